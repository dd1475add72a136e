// Live figures of the guests of this node — CPU use, resident memory, uptime — sampled from
// /proc every statsSampleMs and kept here, node-local.
//
// Why not in the replicated state: Raft carries desired state and rare status changes; figures
// that change every few seconds for every VM would turn into a constant stream of log entries,
// fsyncs and snapshots on every node. Instead each node keeps its latest sample in memory and
// serves it to the other nodes over the API port (PeerService/VmStats, vm-stats-peer.ts); the
// node that answers a `vm list/get` asks the owning nodes with a short timeout and shows the
// figures as unknown when one does not answer. A sample is at most statsSampleMs old.
//
// CPU use is the growth of utime+stime of the QEMU process (all its vCPU and I/O threads)
// between two samples, over the wall time between them, in percent of one CPU; the first sample
// of a process uses its average since it started, so a figure exists from the first sample on.
import { readFile } from "node:fs/promises";
import { parseProcStat, parseProcUptimeMs } from "./qemu/proc.ts";

export const statsSampleMs = 2000;

/** One sample of one guest, as served to other nodes. */
export interface VmLiveStats {
  vmId: string;
  cpuPercent: number;
  memoryRssBytes: number;
  guestMemoryBytes: number;
  uptimeMs: number;
  /** Wall clock of the sampling node. */
  sampledAtMs: number;
}

/** A QEMU process this node holds (from the host agent) and its guest's configured memory. */
export interface GuestProcess {
  vmId: string;
  pid: number;
  guestMemoryMiB: number;
}

/** What one reading of /proc gives for a process. */
export interface ProcReading {
  cpuTimeMs: number;
  /** Since the process started. */
  uptimeMs: number;
  rssBytes: number;
  /** Monotonic time of the reading. */
  atMs: number;
}

/**
 * Percent of one CPU used between two readings of the same process (pure). Without a previous
 * reading, the average since the process started. Never negative; null when no time has passed.
 */
export function cpuPercent(prev: ProcReading | undefined, cur: ProcReading): number | null {
  const cpuMs = prev ? cur.cpuTimeMs - prev.cpuTimeMs : cur.cpuTimeMs;
  const wallMs = prev ? cur.atMs - prev.atMs : cur.uptimeMs;
  if (wallMs <= 0) return null;
  return Math.max(0, (cpuMs / wallMs) * 100);
}

/** VmRSS of /proc/<pid>/status, in bytes (the kernel writes it in kB). */
export function parseStatusRssBytes(text: string): number {
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(text);
  if (!m) throw new Error("parsing /proc/<pid>/status: no VmRSS line (a kernel thread, or a zombie)");
  return Number(m[1]) * 1024;
}

export interface VmStatsSamplerOptions {
  guests: () => GuestProcess[];
  procRoot?: string;
  /** Monotonic clock (deltas). */
  monotonicMs?: () => number;
  /** Wall clock (sampledAtMs). */
  wallMs?: () => number;
  sampleMs?: number;
  onError?: (vmId: string, err: Error) => void;
}

export class VmStatsSampler {
  private readonly readings = new Map<string, { pid: number; reading: ProcReading }>();
  private readonly latest = new Map<string, VmLiveStats>();
  private timer: NodeJS.Timeout | undefined;
  private sampling: Promise<void> | undefined;

  constructor(private readonly opts: VmStatsSamplerOptions) {}

  start(): void {
    this.timer = setInterval(() => void this.sampleNow(), this.opts.sampleMs ?? statsSampleMs);
    this.timer.unref();
    void this.sampleNow();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The latest sample of every guest still running. */
  snapshot(): VmLiveStats[] {
    return [...this.latest.values()];
  }

  /** Takes one sample of every guest (one at a time; a call during a sample waits for it). */
  sampleNow(): Promise<void> {
    this.sampling ??= this.sample().finally(() => (this.sampling = undefined));
    return this.sampling;
  }

  private async sample(): Promise<void> {
    const procRoot = this.opts.procRoot ?? "/proc";
    const guests = this.opts.guests();
    const seen = new Set(guests.map((g) => g.vmId));
    for (const id of [...this.latest.keys(), ...this.readings.keys()]) {
      if (!seen.has(id)) {
        this.latest.delete(id);
        this.readings.delete(id);
      }
    }
    const hostUptimeMs = parseProcUptimeMs(await readFile(`${procRoot}/uptime`, "utf8"));
    for (const g of guests) {
      try {
        await this.sampleOne(g, procRoot, hostUptimeMs);
      } catch (err) {
        this.latest.delete(g.vmId);
        this.opts.onError?.(g.vmId, err as Error);
      }
    }
  }

  private async sampleOne(g: GuestProcess, procRoot: string, hostUptimeMs: number): Promise<void> {
    const [statText, statusText] = await Promise.all([readFile(`${procRoot}/${g.pid}/stat`, "utf8"), readFile(`${procRoot}/${g.pid}/status`, "utf8")]);
    const stat = parseProcStat(statText);
    const reading: ProcReading = {
      cpuTimeMs: stat.cpuTimeMs, uptimeMs: Math.max(0, hostUptimeMs - stat.startTimeMs), rssBytes: parseStatusRssBytes(statusText),
      atMs: (this.opts.monotonicMs ?? (() => performance.now()))(),
    };
    const prev = this.readings.get(g.vmId);
    // A new process for the same VM (restarted) starts its own series.
    const percent = cpuPercent(prev?.pid === g.pid ? prev.reading : undefined, reading);
    this.readings.set(g.vmId, { pid: g.pid, reading });
    if (percent === null) return;
    this.latest.set(g.vmId, {
      vmId: g.vmId, cpuPercent: percent, memoryRssBytes: reading.rssBytes, guestMemoryBytes: g.guestMemoryMiB * 1024 * 1024,
      uptimeMs: reading.uptimeMs, sampledAtMs: (this.opts.wallMs ?? Date.now)(),
    });
  }
}
