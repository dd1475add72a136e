// The run directory of one VM on its node: runtime.json (what a restarted daemon needs to
// re-attach), qemu.log (QEMU's own stdout and stderr, bounded), plus the sockets and pidfile
// the spec places there. Files are written before QEMU starts and read on re-attach.
import { open, readFile, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** A log beyond this is cut to its last qemuLogKeepBytes when a VM starts or is re-attached. */
export const qemuLogBytesMax = 256 * 1024;
export const qemuLogKeepBytes = 64 * 1024;
/** How much of QEMU's output a failed start quotes. */
export const startErrorBytesMax = 4 * 1024;

export const runtimeFileName = "runtime.json";
export const qemuLogFileName = "qemu.log";
const startMarker = "--- trivet: starting QEMU ";

export interface RuntimeRecord {
  name: string;
  uuid: string;
  pidFile: string;
  qmpSocketPath: string;
  argv: string[];
}

export class QemuRuntimeError extends Error {
  constructor(
    readonly code: "start-failed" | "start-timeout" | "already-running" | "not-running" | "not-qemu" | "run-dir" | "stop-timeout" | "qmp" | "grow-unsupported" | "grow-refused",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "QemuRuntimeError";
  }
}

export async function writeRuntimeRecord(runDir: string, record: RuntimeRecord): Promise<void> {
  const path = join(runDir, runtimeFileName);
  await writeFile(`${path}.tmp`, `${JSON.stringify(record, null, 2)}\n`);
  await rename(`${path}.tmp`, path);
}

export async function readRuntimeRecord(runDir: string): Promise<RuntimeRecord> {
  const path = join(runDir, runtimeFileName);
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, "utf8"));
  } catch (err) {
    throw new QemuRuntimeError("run-dir", `re-attaching to the VM in ${runDir}: cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  const r = parsed as Partial<RuntimeRecord>;
  if (typeof r.name !== "string" || typeof r.uuid !== "string" || typeof r.pidFile !== "string" || typeof r.qmpSocketPath !== "string" || !Array.isArray(r.argv)) {
    throw new QemuRuntimeError("run-dir", `re-attaching to the VM in ${runDir}: ${path} lacks name, uuid, pidFile, qmpSocketPath or argv`);
  }
  return r as RuntimeRecord;
}

/** Reads QEMU's pidfile; null when absent or not a number. */
export async function readPidFile(path: string): Promise<number | null> {
  const text = await readFile(path, "utf8").catch(() => null);
  const pid = Number(text?.trim());
  return text !== null && Number.isInteger(pid) && pid > 0 ? pid : null;
}

/**
 * Keeps the log bounded: QEMU appends to it for the VM's whole life. Cut in place (same inode),
 * because a running QEMU keeps writing to the file it was started with; it opened it O_APPEND
 * through us, so its next write lands at the new end.
 */
export async function trimLog(path: string): Promise<void> {
  const size = (await stat(path).catch(() => undefined))?.size ?? 0;
  if (size <= qemuLogBytesMax) return;
  const fh = await open(path, "r+");
  try {
    const keep = Buffer.alloc(qemuLogKeepBytes);
    const { bytesRead } = await fh.read(keep, 0, qemuLogKeepBytes, size - qemuLogKeepBytes);
    await fh.write(keep, 0, bytesRead, 0);
    await fh.truncate(bytesRead);
  } finally {
    await fh.close();
  }
}

/** Opens the log for QEMU (append) after marking where this start's output begins. */
export async function openLogForStart(runDir: string, name: string, at: Date): Promise<{ path: string; fd: number; close(): Promise<void> }> {
  const path = join(runDir, qemuLogFileName);
  await trimLog(path);
  const fh = await open(path, "a", 0o640);
  await fh.write(`${startMarker}for ${name} at ${at.toISOString()} ---\n`);
  return { path, fd: fh.fd, close: () => fh.close() };
}

/** QEMU's output since the last start marker, at most startErrorBytesMax, for a start error. */
export async function lastStartOutput(logPath: string): Promise<string> {
  const text = await readFile(logPath, "utf8").catch(() => "");
  const at = text.lastIndexOf(startMarker);
  const own = at < 0 ? text : text.slice(text.indexOf("\n", at) + 1);
  return own.slice(-startErrorBytesMax).trim();
}
