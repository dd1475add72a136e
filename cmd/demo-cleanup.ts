// What the demo's daemons leave behind when they stop: a daemon never kills its guests on exit
// (by design, so a restart keeps them), and a process it started moments before it was told to
// stop (a KVM probe, a QEMU) outlives it. The demo notes every descendant of its daemons just
// before stopping them and, once they are gone, ends those still running — by pid, and only if
// the pid still names the same process (its start time in /proc), never by name.
import fs from "node:fs";

export interface ProcEntry {
  pid: number;
  ppid: number;
  /** Start time after boot in clock ticks (/proc/PID/stat field 22): tells a reused pid apart. */
  startTicks: number;
}

/** One /proc/PID/stat line; undefined if it cannot be read as one. The name may hold spaces and parentheses. */
export function parseStat(line: string): ProcEntry | undefined {
  const close = line.lastIndexOf(")");
  const pid = Number.parseInt(line, 10);
  if (close < 0 || !Number.isInteger(pid)) return undefined;
  // After the name: state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime priority nice num_threads itrealvalue starttime …
  const rest = line.slice(close + 2).split(" ");
  const ppid = Number(rest[1]);
  const startTicks = Number(rest[19]);
  return Number.isInteger(ppid) && Number.isInteger(startTicks) ? { pid, ppid, startTicks } : undefined;
}

/** Every process below `roots` (children, their children, …), from a process table. */
export function descendants(roots: readonly number[], table: readonly ProcEntry[]): ProcEntry[] {
  const byParent = new Map<number, ProcEntry[]>();
  for (const e of table) byParent.set(e.ppid, [...(byParent.get(e.ppid) ?? []), e]);
  const out: ProcEntry[] = [];
  const seen = new Set<number>(roots);
  const queue = [...roots];
  while (queue.length > 0) {
    for (const child of byParent.get(queue.shift()!) ?? []) {
      if (seen.has(child.pid)) continue;
      seen.add(child.pid);
      out.push(child);
      queue.push(child.pid);
    }
  }
  return out;
}

function readStat(pid: string): ProcEntry | undefined {
  try {
    return parseStat(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return undefined;
  }
}

/** The current process table from /proc (empty where there is none). */
export function processTable(): ProcEntry[] {
  let pids: string[];
  try {
    pids = fs.readdirSync("/proc").filter((e) => /^\d+$/.test(e));
  } catch {
    return [];
  }
  return pids.flatMap((p) => readStat(p) ?? []);
}

/** Sends SIGKILL to each noted process that still runs as the same process; returns their pids. */
export function killLeftovers(noted: readonly ProcEntry[]): number[] {
  const killed: number[] = [];
  for (const e of noted) {
    if (readStat(String(e.pid))?.startTicks !== e.startTicks) continue;
    try {
      process.kill(e.pid, "SIGKILL");
      killed.push(e.pid);
    } catch {
      // Exited in between: nothing left to end.
    }
  }
  return killed;
}
