// Test harness for the Trivet test guest: builds it once (test/guest/build.sh, under a lock so
// parallel test files do not race), boots it under QEMU/TCG from an argument array, exposes the
// serial console as lines to wait on and a stdin to type into, and always kills QEMU on
// dispose. Later tests (QMP, runtime, consoles, storage) reuse it.
import { spawn } from "node:child_process";
import type { ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { runBounded } from "../../core/host/facts.ts";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, "../..");
export const guestCacheDir = join(repoRoot, ".cache", "guest");

/** A first build may download the kernel package (~27 MB). */
export const guestBuildTimeoutMs = 300_000;
export const guestLockWaitMs = 360_000;
export const guestLockPollMs = 200;
export const guestLockOrphanMs = 30_000;
export const guestExitWaitMs = 5000;
export const serialLinesMax = 20_000;
export const guestMemoryMib = 256;
export const guestReadyMarker = "TRIVET-GUEST-READY";
/** Carriage returns and terminal control sequences (the shell's cursor-position query) are not content. */
const escape = String.fromCharCode(0x1b);
const terminalNoise = new RegExp(`\\r|${escape}\\[[0-9;?]*[A-Za-z]`, "g");

export class GuestError extends Error {
  constructor(
    readonly code: "build" | "lock" | "timeout" | "exited",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "GuestError";
  }
}

export interface GuestImage {
  kernel: string;
  initrd: string;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A mkdir lock shared by all processes of this checkout; a lock whose owner died is taken over. */
async function withBuildLock<T>(fn: () => Promise<T>): Promise<T> {
  const lockDir = join(repoRoot, ".cache", "guest-build.lock");
  await mkdir(dirname(lockDir), { recursive: true });
  const deadline = Date.now() + guestLockWaitMs;
  for (;;) {
    try {
      await mkdir(lockDir);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const owner = Number(await readFile(join(lockDir, "pid"), "utf8").catch(() => "0"));
      // No pid file yet is normal for a moment; for longer, its creator died before writing it.
      const ageMs = Date.now() - ((await stat(lockDir).catch(() => undefined))?.mtimeMs ?? Date.now());
      if (owner > 0 ? !processAlive(owner) : ageMs > guestLockOrphanMs) await rm(lockDir, { recursive: true, force: true });
      if (Date.now() > deadline) throw new GuestError("lock", `building the test guest: lock ${lockDir} still held after ${guestLockWaitMs / 1000} s`);
      await new Promise((r) => setTimeout(r, guestLockPollMs));
    }
  }
  try {
    await writeFile(join(lockDir, "pid"), String(process.pid));
    return await fn();
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}

async function runBuild(): Promise<GuestImage> {
  const script = join(here, "build.sh");
  const run = await runBounded("bash", [script], guestBuildTimeoutMs);
  const value = (name: string): string | undefined => new RegExp(`^${name}=(.+)$`, "m").exec(run.output)?.[1];
  const kernel = value("TRIVET_GUEST_KERNEL");
  const initrd = value("TRIVET_GUEST_INITRD");
  if (run.code !== 0 || !kernel || !initrd) {
    const why = run.timedOut ? `timed out after ${guestBuildTimeoutMs / 1000} s` : run.spawnError ?? `exit code ${run.code}`;
    throw new GuestError("build", `building the test guest with ${script}: ${why}\n${run.output.slice(-2000)}`);
  }
  return { kernel, initrd };
}

let ensured: Promise<GuestImage> | undefined;

/** Builds the test guest if needed (cached by build.sh) and returns its kernel and initramfs. */
export function ensureGuest(): Promise<GuestImage> {
  ensured ??= withBuildLock(runBuild).catch((err: unknown) => {
    ensured = undefined;
    throw err;
  });
  return ensured;
}

export interface BootGuestOptions {
  image?: GuestImage;
  /** A raw disk image file, attached as virtio-blk (/dev/vda in the guest). */
  disk?: string;
  /** Attach a virtio NIC on user-mode networking with this MAC (eth0 in the guest). */
  mac?: string;
  /** Static address for eth0, e.g. "10.0.2.15/24" (passed as trivet.ip=). */
  ip?: string;
  heartbeat?: boolean;
  /** Create a QMP unix socket (see Guest.qmpSocketPath). */
  qmp?: boolean;
  memoryMib?: number;
  qemuBinary?: string;
}

/** The QEMU command line of a test guest, one argument per element (pure). */
export function guestArgv(image: GuestImage, opts: BootGuestOptions, qmpSocketPath?: string): string[] {
  const append = ["console=ttyS0", "quiet", "panic=-1"];
  if (opts.ip) append.push(`trivet.ip=${opts.ip}`);
  if (opts.heartbeat) append.push("trivet.heartbeat=1");
  const argv = [
    "-accel", "tcg",
    "-nodefaults", "-no-user-config",
    "-display", "none",
    "-machine", "pc",
    "-m", String(opts.memoryMib ?? guestMemoryMib),
    "-kernel", image.kernel,
    "-initrd", image.initrd,
    "-append", append.join(" "),
    "-no-reboot",
    "-chardev", "stdio,id=serial0,signal=off",
    "-serial", "chardev:serial0",
  ];
  // QEMU option values escape a comma by doubling it.
  if (opts.disk) argv.push("-drive", `file=${opts.disk.replaceAll(",", ",,")},format=raw,if=none,id=disk0,cache=writeback`, "-device", "virtio-blk-pci,drive=disk0");
  if (opts.mac) argv.push("-netdev", "user,id=net0", "-device", `virtio-net-pci,netdev=net0,mac=${opts.mac}`);
  if (qmpSocketPath) argv.push("-qmp", `unix:${qmpSocketPath},server=on,wait=off`);
  return argv;
}

export interface LineMatch {
  line: string;
  /** Index of the line in the serial output; pass index + 1 as `fromLine` to wait for a later one. */
  index: number;
  match: RegExpExecArray;
}

export interface GuestExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Guest {
  readonly pid: number;
  readonly qmpSocketPath: string | undefined;
  /** performance.now() when QEMU was spawned. */
  readonly spawnedAtMs: number;
  lines(): readonly string[];
  /** Types into the serial console. */
  write(text: string): void;
  waitForLine(pattern: RegExp, timeoutMs: number, fromLine?: number): Promise<LineMatch>;
  /** Waits for QEMU to exit by itself; rejects after timeoutMs (QEMU keeps running). */
  waitForExit(timeoutMs: number): Promise<GuestExit>;
  dispose(): Promise<void>;
}

export async function bootGuest(opts: BootGuestOptions = {}): Promise<Guest> {
  const image = opts.image ?? (await ensureGuest());
  const runDir = await mkdtemp(join(tmpdir(), "trivet-guest-"));
  const qmpSocketPath = opts.qmp ? join(runDir, "qmp.sock") : undefined;
  const argv = guestArgv(image, opts, qmpSocketPath);
  const spawnedAtMs = performance.now();
  const child = spawn(opts.qemuBinary ?? "qemu-system-x86_64", argv, { stdio: ["pipe", "pipe", "pipe"], detached: true });
  return new SerialGuest(child, spawnedAtMs, runDir, qmpSocketPath);
}

interface Waiter {
  pattern: RegExp;
  fromLine: number;
  resolve(m: LineMatch): void;
  reject(err: Error): void;
}

class SerialGuest implements Guest {
  private readonly serial: string[] = [];
  private partial = "";
  private stderr = "";
  private readonly waiters = new Set<Waiter>();
  private exit: GuestExit | undefined;
  private readonly exited: Promise<GuestExit>;

  constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    readonly spawnedAtMs: number,
    private readonly runDir: string,
    readonly qmpSocketPath: string | undefined,
  ) {
    child.stdout.on("data", (chunk: Buffer) => this.onSerial(chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString("utf8")).slice(-4000);
    });
    child.stdin.on("error", () => {}); // Writing to a QEMU that just exited must not crash the test run.
    this.exited = new Promise((resolveExit) => {
      const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
        this.exit = { code, signal };
        for (const w of this.waiters) w.reject(new GuestError("exited", `QEMU exited (code ${code}, signal ${signal}) while waiting for ${w.pattern}\n${this.tail()}`));
        this.waiters.clear();
        resolveExit(this.exit);
      };
      child.on("close", onExit);
      child.on("error", (err) => {
        this.stderr += `\nspawn: ${err.message}`;
        onExit(null, null);
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  lines(): readonly string[] {
    return this.serial;
  }

  write(text: string): void {
    this.child.stdin.write(text);
  }

  private onSerial(text: string): void {
    const parts = (this.partial + text).split("\n");
    this.partial = parts.pop() ?? "";
    for (const raw of parts) {
      if (this.serial.length >= serialLinesMax) this.serial.shift();
      this.serial.push(raw.replace(terminalNoise, ""));
    }
    for (const w of [...this.waiters]) this.check(w);
  }

  private check(w: Waiter): boolean {
    for (let i = w.fromLine; i < this.serial.length; i++) {
      const line = this.serial[i] ?? "";
      const match = w.pattern.exec(line);
      if (match) {
        this.waiters.delete(w);
        w.resolve({ line, index: i, match });
        return true;
      }
    }
    return false;
  }

  private tail(): string {
    return `--- last serial lines ---\n${this.serial.slice(-20).join("\n")}\n--- qemu stderr ---\n${this.stderr.slice(-1000)}`;
  }

  waitForLine(pattern: RegExp, timeoutMs: number, fromLine = 0): Promise<LineMatch> {
    return new Promise((resolveLine, rejectLine) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        rejectLine(new GuestError("timeout", `waiting for a serial line matching ${pattern}: timed out after ${timeoutMs} ms\n${this.tail()}`));
      }, timeoutMs);
      const waiter: Waiter = {
        pattern,
        fromLine,
        resolve: (m) => { clearTimeout(timer); resolveLine(m); },
        reject: (e) => { clearTimeout(timer); rejectLine(e); },
      };
      this.waiters.add(waiter);
      if (this.check(waiter) || !this.exit) return;
      this.waiters.delete(waiter);
      waiter.reject(new GuestError("exited", `QEMU already exited (code ${this.exit.code}) before ${pattern} appeared\n${this.tail()}`));
    });
  }

  waitForExit(timeoutMs: number): Promise<GuestExit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, rejectExit) => {
      timer = setTimeout(() => rejectExit(new GuestError("timeout", `waiting for QEMU to exit: still running after ${timeoutMs} ms\n${this.tail()}`)), timeoutMs);
    });
    return Promise.race([this.exited, timeout]).finally(() => clearTimeout(timer));
  }

  async dispose(): Promise<void> {
    if (!this.exit && this.child.pid !== undefined) {
      try {
        process.kill(-this.child.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
      await this.waitForExit(guestExitWaitMs).catch(() => undefined);
    }
    await rm(this.runDir, { recursive: true, force: true });
  }
}
