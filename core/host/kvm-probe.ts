// Decides whether KVM is *usable* on this host, not merely present: /dev/kvm can exist and a
// guest under it still hang (nested virtualization without hardware support does that). The
// probe boots a Linux kernel under `-accel kvm` with no root file system, so it runs real guest
// code (real mode, long mode, paging, interrupts, timers) until the kernel panics and, with
// panic=-1 and -no-reboot, QEMU exits by itself. Under working KVM that takes well under a
// second; a probe that has not finished after kvmProbeTimeoutMs is killed and KVM is declared
// unusable. The answer is cached, keyed by what could change it; I/O comes in through
// KvmProbeDeps so the decision logic is tested without QEMU.
import { constants as fsConstants } from "node:fs";
import { mkdir, open, readdir, readFile, rename, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { runBounded } from "./facts.ts";
import type { BoundedRun } from "./facts.ts";

/** A kernel reaches its panic in well under a second under working KVM (≈1.7 s even under TCG here). */
export const kvmProbeTimeoutMs = 3000;
export const kvmProbeMemoryMib = 128;
/** Printed by the probe kernel when it finds no root file system: proof that guest code ran. */
export const kvmProbeMarker = "Kernel panic";

/** What the cached answer depends on; a change in any of them forces a new probe. */
export interface KvmProbeKey {
  kernelRelease: string;
  qemuVersion: string;
  devKvmExists: boolean;
}

export type KvmUnusableCode = "no-device" | "no-access" | "no-qemu" | "no-kernel" | "timeout" | "failed";

export interface KvmProbeResult {
  usable: boolean;
  /** Why KVM is unusable; absent when usable. */
  code?: KvmUnusableCode;
  /** One short phrase, e.g. "probe timed out after 3 s" or "probe kernel booted under KVM in 412 ms". */
  reason: string;
  probeMs?: number;
  probedAtMs: number;
  fromCache: boolean;
  key: KvmProbeKey;
  /** Set when the answer could not be cached; the answer itself still stands. */
  cacheError?: string;
}

export interface KvmProbeDeps {
  /** Whether /dev/kvm exists, and why it cannot be opened read-write if it cannot. */
  checkDevice(): Promise<{ exists: boolean; openError?: string }>;
  /** A bootable x86 Linux kernel image for the probe, or null when there is none. */
  findKernel(): Promise<string | null>;
  run(file: string, args: readonly string[], timeoutMs: number): Promise<BoundedRun>;
  readCache(): Promise<string | null>;
  writeCache(text: string): Promise<void>;
  nowMs(): number;
}

export interface KvmProbeOptions {
  qemuPath: string | null;
  qemuVersion: string | null;
  kernelRelease: string;
  /** Ignore a cached answer and probe again (`trivet host check --reprobe`). */
  reprobe?: boolean;
  timeoutMs?: number;
}

/** The probe's QEMU command line: no firmware beyond the default, no disks, serial to stdout. */
export function kvmProbeArgv(kernelPath: string): string[] {
  return [
    "-accel", "kvm",
    "-nodefaults", "-no-user-config",
    "-display", "none",
    "-machine", "pc",
    "-m", String(kvmProbeMemoryMib),
    "-serial", "stdio",
    "-kernel", kernelPath,
    "-append", "console=ttyS0 quiet panic=-1",
    "-no-reboot",
  ];
}

function lastLine(text: string): string {
  const lines = text.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  return lines[lines.length - 1] ?? "no output";
}

/** Turns one probe run into a verdict (pure). */
export function judgeProbeRun(run: BoundedRun, timeoutMs: number): Pick<KvmProbeResult, "usable" | "code" | "reason" | "probeMs"> {
  if (run.spawnError !== undefined) return { usable: false, code: "failed", reason: `could not start qemu: ${run.spawnError}` };
  if (run.timedOut) return { usable: false, code: "timeout", reason: `probe timed out after ${timeoutMs / 1000} s` };
  if (run.code === 0 && run.output.includes(kvmProbeMarker)) {
    return { usable: true, reason: `probe kernel booted under KVM in ${run.elapsedMs} ms`, probeMs: run.elapsedMs };
  }
  const how = run.code === null ? `signal ${run.signal ?? "unknown"}` : `code ${run.code}`;
  return { usable: false, code: "failed", reason: `probe qemu exited with ${how}: ${lastLine(run.output)}` };
}

function sameKey(a: KvmProbeKey, b: KvmProbeKey): boolean {
  return a.kernelRelease === b.kernelRelease && a.qemuVersion === b.qemuVersion && a.devKvmExists === b.devKvmExists;
}

async function cachedResult(deps: KvmProbeDeps, key: KvmProbeKey): Promise<KvmProbeResult | null> {
  let text: string | null;
  try {
    text = await deps.readCache();
  } catch {
    return null;
  }
  if (text === null) return null;
  try {
    const parsed = JSON.parse(text) as Partial<KvmProbeResult>;
    if (typeof parsed.usable !== "boolean" || typeof parsed.reason !== "string" || !parsed.key || !sameKey(parsed.key, key)) return null;
    return { ...(parsed as KvmProbeResult), key, fromCache: true };
  } catch {
    return null; // A corrupt cache only costs a probe.
  }
}

/** Answers "is KVM usable here?", from the cache when its key still matches. */
export async function checkKvm(deps: KvmProbeDeps, opts: KvmProbeOptions): Promise<KvmProbeResult> {
  const timeoutMs = opts.timeoutMs ?? kvmProbeTimeoutMs;
  const device = await deps.checkDevice();
  const key: KvmProbeKey = { kernelRelease: opts.kernelRelease, qemuVersion: opts.qemuVersion ?? "none", devKvmExists: device.exists };
  const base = { probedAtMs: deps.nowMs(), fromCache: false, key };
  if (!device.exists) return { ...base, usable: false, code: "no-device", reason: "/dev/kvm does not exist" };
  if (device.openError !== undefined) return { ...base, usable: false, code: "no-access", reason: `cannot open /dev/kvm: ${device.openError}` };
  if (opts.qemuPath === null) return { ...base, usable: false, code: "no-qemu", reason: "qemu-system-x86_64 not found" };
  if (!opts.reprobe) {
    const cached = await cachedResult(deps, key);
    if (cached) return cached;
  }
  const kernel = await deps.findKernel();
  if (kernel === null) return { ...base, usable: false, code: "no-kernel", reason: "no kernel image in /boot to probe with" };
  const run = await deps.run(opts.qemuPath, kvmProbeArgv(kernel), timeoutMs);
  const result: KvmProbeResult = { ...base, ...judgeProbeRun(run, timeoutMs), probedAtMs: deps.nowMs() };
  try {
    await deps.writeCache(`${JSON.stringify(result)}\n`);
  } catch (err) {
    result.cacheError = `writing the KVM probe cache: ${(err as Error).message}`;
  }
  return result;
}

/** "usable", or "unusable (probe timed out after 3 s), using tcg". */
export function kvmSummary(result: KvmProbeResult): string {
  return result.usable ? "usable" : `unusable (${result.reason}), using tcg`;
}

export function defaultKvmCachePath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME !== "" ? env.XDG_CACHE_HOME : join(homedir(), ".cache");
  return join(base, "trivet", "kvm-probe.json");
}

async function checkDevKvm(): Promise<{ exists: boolean; openError?: string }> {
  try {
    const handle = await open("/dev/kvm", fsConstants.O_RDWR);
    await handle.close();
    return { exists: true };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return { exists: false };
    const hint = code === "EACCES" ? " (add this user to the 'kvm' group)" : "";
    return { exists: true, openError: `${(err as Error).message}${hint}` };
  }
}

/** The running kernel's image if /boot has it, else the newest /boot/vmlinuz-*. */
async function findBootKernel(kernelRelease: string): Promise<string | null> {
  let names: string[];
  try {
    names = (await readdir("/boot")).filter((n) => n.startsWith("vmlinuz-"));
  } catch {
    return null;
  }
  if (names.includes(`vmlinuz-${kernelRelease}`)) return `/boot/vmlinuz-${kernelRelease}`;
  names.sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  const newest = names[names.length - 1];
  return newest === undefined ? null : `/boot/${newest}`;
}

/** The real host: /dev/kvm, /boot, QEMU through runBounded, a JSON cache file written atomically. */
export function hostKvmProbeDeps(opts: { cachePath?: string; kernelRelease: string }): KvmProbeDeps {
  const cachePath = opts.cachePath ?? defaultKvmCachePath();
  return {
    checkDevice: checkDevKvm,
    findKernel: () => findBootKernel(opts.kernelRelease),
    // Under coreutils `timeout` as well: runBounded kills the probe's process group when its
    // time is up, but a daemon killed meanwhile cannot, and a probe guest that hangs (the very
    // case it detects) would then run forever; `timeout` ends it a second later regardless.
    run: (file, args, timeoutMs) => runBounded("timeout", ["-s", "KILL", String(Math.ceil(timeoutMs / 1000) + 1), file, ...args], timeoutMs),
    async readCache() {
      try {
        return await readFile(cachePath, "utf8");
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
        throw err;
      }
    },
    async writeCache(text) {
      await mkdir(dirname(cachePath), { recursive: true });
      const tmp = `${cachePath}.${process.pid}.tmp`;
      await writeFile(tmp, text);
      await rename(tmp, cachePath);
    },
    nowMs: () => Date.now(),
  };
}
