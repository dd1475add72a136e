// `npm run bench:raft`: Trivet's three-process Raft group against a three-member etcd 3.4
// cluster, both on loopback with real fsync, driven by the same closed-loop load (load.ts)
// through the same channel policy (target.ts). Prints a table, one JSON line per client
// count and one for leader failover. `--only etcd` or `--only trivet` runs one side.
//
// Environment: BENCH_DURATION_MS (measured window per run, default 10000), BENCH_WARMUP_MS
// (default 2000), BENCH_CLIENTS (default "1,1000"), BENCH_CLIENTS_PER_CHANNEL (default 10),
// BENCH_WORKERS (load-generator worker threads for runs with more than one client; default 0
// = the main thread). Measured on the 2-core build machine (other work running, load ~8),
// 1000 clients against etcd for 10 s: main thread 4155-5243 writes/s with the client at
// 65-75% of one core; 2 worker threads 4593-4830; 1 worker thread 3839. Extra threads do not
// help because one thread is not saturated and every client cycle is taken from the servers,
// so the main thread is the default, for both systems.
import { readFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { createEtcdTarget } from "./etcd-target.ts";
import { measureFailover, runLoad } from "./load.ts";
import type { LoadResult } from "./load.ts";
import { runLoadInWorkers } from "./load-workers.ts";
import { channelCountFor, clientsPerChannelDefault, failoverAttemptTimeoutMs } from "./target.ts";
import type { BenchTarget, BenchTargetOptions, Writer, WriterSpec } from "./target.ts";

/** Linux reports /proc/<pid>/stat times in clock ticks; USER_HZ is 100 on every common build. */
const clockTicksPerSec = 100;

interface Config {
  only: "etcd" | "trivet" | undefined;
  durationMs: number;
  warmupMs: number;
  clientCounts: number[];
  workers: number;
  clientsPerChannel: number;
}

interface RunRow {
  system: string;
  clients: number;
  result: LoadResult;
  clientCpuPct: number;
  serverCpuPct: number;
}

function intFromEnv(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`reading ${name}: "${raw}" is not an integer >= ${min}`);
  return n;
}

function parseConfig(argv: readonly string[]): Config {
  const i = argv.indexOf("--only");
  const only = i >= 0 ? argv[i + 1] : undefined;
  if (only !== undefined && only !== "etcd" && only !== "trivet") throw new Error(`parsing --only: "${only}" is neither etcd nor trivet`);
  const clientCounts = (process.env.BENCH_CLIENTS ?? "1,1000").split(",").map((s) => Number(s.trim()));
  if (clientCounts.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`reading BENCH_CLIENTS: "${process.env.BENCH_CLIENTS}" is not a list of positive integers`);
  return {
    only,
    durationMs: intFromEnv("BENCH_DURATION_MS", 10_000, 100),
    warmupMs: intFromEnv("BENCH_WARMUP_MS", 2_000, 0),
    clientCounts,
    workers: intFromEnv("BENCH_WORKERS", 0, 0),
    clientsPerChannel: intFromEnv("BENCH_CLIENTS_PER_CHANNEL", clientsPerChannelDefault, 1),
  };
}

/** CPU time (ms) used so far by the given processes; a process that is gone counts as 0. */
function serverCpuMs(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      // Field 2 (comm) may contain spaces; utime and stime are fields 14 and 15.
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(rest[11]) + Number(rest[12]);
    } catch {
      // exited between listing and reading
    }
  }
  return (ticks * 1000) / clockTicksPerSec;
}

async function writerFrom(spec: WriterSpec): Promise<Writer> {
  const mod = (await import(spec.module)) as { createWriter(config: unknown): Promise<Writer> };
  return mod.createWriter(spec.config);
}

async function runClients(target: BenchTarget, clients: number, cfg: Config): Promise<RunRow> {
  const channelsFor = (n: number): number => channelCountFor(n, cfg.clientsPerChannel);
  const pids = target.pids();
  const cpu0 = process.cpuUsage();
  const server0 = serverCpuMs(pids);
  const wall0 = performance.now();
  let result: LoadResult;
  if (clients === 1 || cfg.workers === 0) {
    const writer = await writerFrom(target.writerSpec(channelsFor(clients)));
    try {
      result = await runLoad({ clients, durationMs: cfg.durationMs, warmupMs: cfg.warmupMs, write: writer.write });
    } finally {
      writer.close();
    }
  } else {
    result = await runLoadInWorkers({ workers: cfg.workers, clients, durationMs: cfg.durationMs, warmupMs: cfg.warmupMs, writerSpec: (n) => target.writerSpec(channelsFor(n)) });
  }
  const wallMs = performance.now() - wall0;
  const cpu = process.cpuUsage(cpu0);
  return {
    system: target.name,
    clients,
    result,
    clientCpuPct: ((cpu.user + cpu.system) / 1000 / wallMs) * 100,
    serverCpuPct: ((serverCpuMs(pids) - server0) / wallMs) * 100,
  };
}

async function benchTarget(target: BenchTarget, cfg: Config): Promise<{ rows: RunRow[]; failoverMs: number }> {
  console.error(`[bench] starting ${target.name}`);
  await target.start();
  try {
    const rows: RunRow[] = [];
    for (const clients of cfg.clientCounts) {
      console.error(`[bench] ${target.name}: ${clients} clients, ${cfg.warmupMs} ms warm-up + ${cfg.durationMs} ms`);
      rows.push(await runClients(target, clients, cfg));
    }
    console.error(`[bench] ${target.name}: failover (kill -9 of the leader)`);
    const failover = await measureFailover({ write: target.write, killLeader: () => target.killLeader() });
    return { rows, failoverMs: failover.failoverMs };
  } finally {
    await target.stop();
  }
}

async function loadTrivetTarget(options: BenchTargetOptions): Promise<BenchTarget> {
  // A computed specifier: the lead's trivet-target.ts may not exist yet, and tsc must not fail on it.
  const specifier = new URL("./trivet-target.ts", import.meta.url).href;
  try {
    const mod = (await import(specifier)) as { createTrivetTarget(o: BenchTargetOptions): BenchTarget };
    return mod.createTrivetTarget(options);
  } catch (err) {
    throw new Error(`loading the Trivet target from test/bench/trivet-target.ts: ${(err as Error).message} (run with --only etcd to bench etcd alone)`, { cause: err });
  }
}

const round = (n: number | undefined, digits: number): number | null => (n === undefined || !Number.isFinite(n) ? null : Number(n.toFixed(digits)));

function printReport(rows: readonly RunRow[], failover: Map<string, number>, cfg: Config): void {
  const head = ["system", "clients", "writes/s", "p50 ms", "p99 ms", "errors", "client CPU %", "server CPU %"];
  const lines = rows.map((r) => [r.system, String(r.clients), r.result.writesPerSec.toFixed(0), r.result.p50Ms.toFixed(2), r.result.p99Ms.toFixed(2), String(r.result.errors), r.clientCpuPct.toFixed(0), r.serverCpuPct.toFixed(0)]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? "").length)));
  for (const l of [head, ...lines]) console.log(l.map((c, i) => c.padStart(widths[i] ?? 0)).join("  "));
  for (const r of rows) if (r.result.firstError) console.log(`${r.system} ${r.clients} clients, first error: ${r.result.firstError}`);
  for (const [system, ms] of failover) console.log(`${system} failover (kill -9 leader → next acknowledged write): ${ms.toFixed(0)} ms`);
  for (const clients of cfg.clientCounts) {
    const t = rows.find((r) => r.system === "trivet" && r.clients === clients)?.result;
    const e = rows.find((r) => r.system === "etcd" && r.clients === clients)?.result;
    const ratio = t && e && e.writesPerSec > 0 ? t.writesPerSec / e.writesPerSec : undefined;
    console.log(JSON.stringify({ bench: "raft", clients, trivet_writes_s: round(t?.writesPerSec, 0), etcd_writes_s: round(e?.writesPerSec, 0), ratio: round(ratio, 3), trivet_p99_ms: round(t?.p99Ms, 2), etcd_p99_ms: round(e?.p99Ms, 2) }));
  }
  console.log(JSON.stringify({ bench: "raft_failover", trivet_ms: round(failover.get("trivet"), 0), etcd_ms: round(failover.get("etcd"), 0) }));
}

/** Other work on the machine takes CPU from both the servers and the load generator. */
function warnIfBusy(when: string): void {
  const load = loadavg()[0] ?? 0;
  const cores = availableParallelism();
  if (load > cores / 2) console.error(`[bench] warning ${when}: 1-minute load average ${load.toFixed(1)} on ${cores} cores; other work is competing with the benchmark, figures will be low and noisy`);
}

async function main(): Promise<void> {
  const cfg = parseConfig(process.argv.slice(2));
  warnIfBusy("before the run");
  // The in-process writer is only used for failover: one writer, one channel.
  const targetOptions: BenchTargetOptions = { channels: 1, requestTimeoutMs: failoverAttemptTimeoutMs };
  const targets: BenchTarget[] = [];
  if (cfg.only !== "etcd") targets.push(await loadTrivetTarget(targetOptions));
  if (cfg.only !== "trivet") targets.push(createEtcdTarget(targetOptions));
  const rows: RunRow[] = [];
  const failover = new Map<string, number>();
  for (const target of targets) {
    const r = await benchTarget(target, cfg);
    rows.push(...r.rows);
    failover.set(target.name, r.failoverMs);
  }
  warnIfBusy("after the run");
  printReport(rows, failover, cfg);
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  // exit() runs the clusters' exit hooks, which kill their processes.
  process.once(signal, () => process.exit(130));
}

main().catch((err: unknown) => {
  console.error(`bench:raft failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
