// The whole machine's CPU time, for benchmarks whose work is spread over several processes
// (daemons, bricks, fio): busy and total clock ticks from /proc/stat's first line, and the cores
// busy between two readings.
import { readFile } from "node:fs/promises";

export interface CpuTicks {
  busy: number;
  total: number;
}

/** Busy (user, nice, system, irq, softirq, steal; guest time is within user) and total ticks. */
export function cpuTicksOf(procStat: string): CpuTicks {
  const line = procStat.split("\n").find((l) => l.startsWith("cpu "));
  const fields = (line ?? "").trim().split(/\s+/).slice(1).map(Number);
  if (fields.length < 8 || fields.some((n) => !Number.isFinite(n))) {
    throw new Error(`reading /proc/stat: no "cpu" line with eight counters in ${JSON.stringify(procStat.slice(0, 120))}`);
  }
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields;
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait };
}

export async function machineCpu(): Promise<CpuTicks> {
  return cpuTicksOf(await readFile("/proc/stat", "utf8"));
}

/** Cores busy on average between two readings of a machine with `cpus` CPUs. */
export function busyCores(before: CpuTicks, after: CpuTicks, cpus: number): number {
  const total = after.total - before.total;
  return total <= 0 ? 0 : ((after.busy - before.busy) / total) * cpus;
}
