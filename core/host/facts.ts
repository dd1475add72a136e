// Host facts as data: CPU, memory, kernel and the QEMU binaries of this node. The parsers are
// pure (text in, facts out) so that they are tested on sample text; `gatherHostFacts` is the
// thin I/O edge that reads /proc and runs the binaries with bounded timeouts. The QEMU command
// line builder takes these facts as input instead of reaching into the host while it builds.
import { spawn } from "node:child_process";
import { constants as fsConstants } from "node:fs";
import { access, readFile } from "node:fs/promises";
import { release } from "node:os";
import { delimiter, join } from "node:path";

/** A `--version` run that takes longer than this is reported as an error, not awaited. */
export const qemuVersionTimeoutMs = 3000;
/** Output kept from a bounded command; QEMU's version text is a few hundred bytes. */
export const commandOutputBytesMax = 64 * 1024;

export const qemuBinaryNames = ["qemu-system-x86_64", "qemu-img", "qemu-storage-daemon"] as const;
export type QemuBinaryName = (typeof qemuBinaryNames)[number];

export interface CpuFacts {
  model: string;
  /** Logical CPUs (processor entries in /proc/cpuinfo). */
  count: number;
  /** Hardware virtualization advertised to this host: Intel VT-x, AMD-V, or none (e.g. nested without it). */
  virtualization: "vmx" | "svm" | "none";
  flags: string[];
}

export interface MemoryFacts {
  totalBytes: number;
  availableBytes: number;
}

export interface QemuBinaryFacts {
  name: QemuBinaryName;
  /** Absolute path found on PATH, or null when the binary is not installed. */
  path: string | null;
  /** e.g. "7.2.22"; null when not found or the version could not be read (see `error`). */
  version: string | null;
  error?: string;
}

export interface HostFacts {
  cpu: CpuFacts;
  memory: MemoryFacts;
  kernel: { release: string };
  qemu: QemuBinaryFacts[];
}

export class HostFactsError extends Error {
  constructor(
    readonly code: "parse" | "read",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "HostFactsError";
  }
}

/** Parses /proc/cpuinfo (x86 layout: blank-line separated "key : value" blocks, one per CPU). */
export function parseCpuinfo(text: string): CpuFacts {
  let count = 0;
  let model = "";
  let flags: string[] = [];
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const key = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (key === "processor") count++;
    else if (key === "model name" && model === "") model = value;
    else if (key === "flags" && flags.length === 0) flags = value.split(/\s+/).filter((f) => f !== "");
  }
  if (count === 0) throw new HostFactsError("parse", "parsing /proc/cpuinfo: no 'processor' entries");
  const virtualization = flags.includes("vmx") ? "vmx" : flags.includes("svm") ? "svm" : "none";
  return { model: model || "unknown", count, virtualization, flags };
}

/** Parses /proc/meminfo; values there are in KiB. */
export function parseMeminfo(text: string): MemoryFacts {
  const kib = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+)\\s*kB`, "m").exec(text);
    if (!m?.[1]) throw new HostFactsError("parse", `parsing /proc/meminfo: no ${name} line`);
    return Number(m[1]) * 1024;
  };
  return { totalBytes: kib("MemTotal"), availableBytes: kib("MemAvailable") };
}

/**
 * Extracts the version from the first line of `qemu-system-x86_64 --version` (also
 * `qemu-img --version`, `qemu-storage-daemon --version`): "QEMU emulator version 7.2.22 (Debian …)".
 */
export function parseQemuVersion(output: string): string | null {
  const first = output.split("\n", 1)[0] ?? "";
  const m = /\bversion\s+(\d+\.\d+(?:\.\d+)?)/i.exec(first);
  return m?.[1] ?? null;
}

export interface BoundedRun {
  /** Exit code, or null when killed by a signal or the timeout. */
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  output: string;
  elapsedMs: number;
  /** Set when the process could not be started at all (ENOENT, EACCES). */
  spawnError?: string;
}

/**
 * Runs a program from an argument array (never a shell string) in its own process group, with
 * stdout and stderr merged. On timeout the whole group is killed and the call returns without
 * waiting for a process that may be stuck in the kernel.
 */
export function runBounded(file: string, args: readonly string[], timeoutMs: number): Promise<BoundedRun> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ["ignore", "pipe", "pipe"], detached: true });
    let output = "";
    let settled = false;
    const finish = (run: Omit<BoundedRun, "elapsedMs" | "output">): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...run, output, elapsedMs: Math.round(performance.now() - started) });
    };
    const collect = (chunk: Buffer): void => {
      if (output.length < commandOutputBytesMax) output += chunk.toString("utf8").slice(0, commandOutputBytesMax - output.length);
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    const timer = setTimeout(() => {
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {
          // Already gone: nothing to kill.
        }
      }
      child.stdout.destroy();
      child.stderr.destroy();
      child.unref();
      finish({ code: null, signal: "SIGKILL", timedOut: true });
    }, timeoutMs);
    child.on("error", (err) => finish({ code: null, signal: null, timedOut: false, spawnError: err.message }));
    child.on("close", (code, signal) => finish({ code, signal, timedOut: false }));
  });
}

/** Finds an executable on PATH without spawning `which`. */
export async function findOnPath(name: string, pathEnv = process.env.PATH ?? ""): Promise<string | null> {
  for (const dir of pathEnv.split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // Not in this directory; try the next.
    }
  }
  return null;
}

export async function gatherQemuBinary(name: QemuBinaryName): Promise<QemuBinaryFacts> {
  const path = await findOnPath(name);
  if (path === null) return { name, path: null, version: null, error: "not found on PATH" };
  const run = await runBounded(path, ["--version"], qemuVersionTimeoutMs);
  if (run.spawnError) return { name, path, version: null, error: `running ${path} --version: ${run.spawnError}` };
  if (run.timedOut) return { name, path, version: null, error: `running ${path} --version: timed out after ${qemuVersionTimeoutMs / 1000} s` };
  const version = parseQemuVersion(run.output);
  if (version === null) return { name, path, version: null, error: `running ${path} --version: no version in its output` };
  return { name, path, version };
}

async function readProc(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    throw new HostFactsError("read", `reading ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Reads this host's facts. Runs the QEMU binaries in parallel, each bounded by qemuVersionTimeoutMs. */
export async function gatherHostFacts(): Promise<HostFacts> {
  const [cpuinfo, meminfo, qemu] = await Promise.all([
    readProc("/proc/cpuinfo"),
    readProc("/proc/meminfo"),
    Promise.all(qemuBinaryNames.map((n) => gatherQemuBinary(n))),
  ]);
  return { cpu: parseCpuinfo(cpuinfo), memory: parseMeminfo(meminfo), kernel: { release: release() }, qemu };
}
