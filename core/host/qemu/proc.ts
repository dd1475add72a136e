// What /proc says about a QEMU process: identity (its command line names the VM's UUID),
// liveness (a zombie is not alive), and usage (CPU time, RSS, uptime). Parsers are pure;
// the readers take the /proc root so tests can point them at sample files.
import { readFile } from "node:fs/promises";

/** USER_HZ: the unit of /proc/<pid>/stat times; 100 on every Linux architecture Trivet runs on. */
export const procTicksPerSecond = 100;
/** x86_64 base page size: the unit of the rss field in /proc/<pid>/stat. */
export const procPageBytes = 4096;

export interface ProcStat {
  /** R, S, D, Z, T, … */
  state: string;
  processGroup: number;
  cpuTimeMs: number;
  /** Since host boot. */
  startTimeMs: number;
  rssBytes: number;
}

/** Parses /proc/<pid>/stat; the command name may hold spaces and parentheses, so split after the last ")". */
export function parseProcStat(text: string): ProcStat {
  const close = text.lastIndexOf(")");
  const f = text.slice(close + 2).trim().split(" ");
  // f[0] is field 3 (state) of proc(5); field n is f[n - 3].
  const num = (field: number): number => {
    const v = Number(f[field - 3]);
    if (close < 0 || !Number.isFinite(v)) throw new Error(`parsing /proc/<pid>/stat: field ${field} missing in ${JSON.stringify(text.slice(0, 80))}`);
    return v;
  };
  const tickMs = 1000 / procTicksPerSecond;
  return {
    state: f[0] ?? "?",
    processGroup: num(5),
    cpuTimeMs: (num(14) + num(15)) * tickMs,
    startTimeMs: num(22) * tickMs,
    rssBytes: num(24) * procPageBytes,
  };
}

/** First field of /proc/uptime, seconds since boot. */
export function parseProcUptimeMs(text: string): number {
  const v = Number(text.trim().split(/\s+/)[0]);
  if (!Number.isFinite(v)) throw new Error(`parsing /proc/uptime: ${JSON.stringify(text.slice(0, 40))}`);
  return Math.round(v * 1000);
}

/** True when the NUL-separated command line is a QEMU started for this VM ("-uuid <uuid>"). */
export function cmdlineIsQemuFor(cmdline: string, uuid: string): boolean {
  const argv = cmdline.split("\0");
  const binary = argv[0]?.split("/").pop() ?? "";
  const at = argv.indexOf("-uuid");
  return binary.includes("qemu") && at >= 0 && argv[at + 1] === uuid;
}

export async function readProcStat(pid: number, procRoot = "/proc"): Promise<ProcStat | null> {
  const text = await readFile(`${procRoot}/${pid}/stat`, "utf8").catch(() => null);
  return text === null ? null : parseProcStat(text);
}

/** Alive means the process exists and is not a zombie waiting to be reaped. */
export async function processAlive(pid: number, procRoot = "/proc"): Promise<boolean> {
  const stat = await readProcStat(pid, procRoot);
  return stat !== null && stat.state !== "Z" && stat.state !== "X";
}

export async function readCmdline(pid: number, procRoot = "/proc"): Promise<string | null> {
  return readFile(`${procRoot}/${pid}/cmdline`, "utf8").catch(() => null);
}
