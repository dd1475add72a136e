// `npm run bench:storage`: the storage issue's four fio jobs against (a) a Trivet replica-3
// image over NBD (three local daemons), (b) a GlusterFS 10 replica-3 volume with the virt group
// over gfapi (three bricks on this host), (c) qemu-storage-daemon exporting a local raw file over
// NBD (one copy: the ceiling for an NBD-served image) and (d) the local file itself. Prints a
// table, the ratios Trivet/GlusterFS and Trivet/ceiling next to the targets, and as the last line
// JSON. A system that cannot be set up is reported as "not available (reason)" with null figures:
// no number is ever made up.
//
// Systems run one after the other (the others stopped), each image written once in full before
// its jobs so reads hit data, a sync(1) before every job. Caching differs by design and is printed:
// Trivet's bricks write 128 KiB and larger aligned requests O_DIRECT and the rest (and all reads)
// through the page cache; qsd (cache.direct=off) uses the page cache; fio's nbd engine sends no
// FLUSH; gluster's virt group (strict-o-direct) and the local file (--direct=1) bypass it.
//
// GlusterFS runs twice: as the issue names it (plain TCP between client and bricks; the targets are
// against this one) and with TLS on its I/O path ("gluster-tls"), the like-for-like peer of
// Trivet's mutual-TLS replication. Every job also records the CPU the whole machine was busy
// with while fio ran (ramp included), printed as cores and CPU µs per I/O: on this shared
// two-core machine the systems are CPU-bound, and the CPU an I/O costs is what carries over to
// hosts with CPUs of their own.
//
// Environment: BENCH_RUNTIME_S (per job, default 8), BENCH_RAMP_S (default 1), BENCH_IMAGE_MIB
// (default 1024), BENCH_SYSTEMS (default "trivet,gluster,gluster-tls,ceiling,local"), BENCH_JOBS
// (a subset of the job keys, for iterating on one; default all), BENCH_ROUNDS (default 1: the
// systems run one after the other this many times and each figure is the median round's, by
// IOPS), BENCH_DIR.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fillArgs, measure, runFio, storageJobs, type FioFigures, type FioJob, type FioTarget, type JobKey } from "./fio.ts";
import { startGluster } from "./gluster.ts";
import { startTrivetTarget } from "./storage-trivet.ts";
import { busyCores, machineCpu } from "./machine-cpu.ts";

const systemKeys = ["trivet", "gluster", "gluster-tls", "ceiling", "local"] as const;
type SystemKey = (typeof systemKeys)[number];
const fillTimeoutMs = 600_000;
const syncTimeoutMs = 120_000;
const qsdStartTimeoutMs = 30_000;
const qsdPollMs = 50;
const mib = 1024 * 1024;
const glusterBrickHosts = ["127.0.0.21", "127.0.0.22", "127.0.0.23"];
const reasonCharsMax = 800;
const cpuCount = availableParallelism();
const targets: Partial<Record<JobKey, number>> = { randwrite: 3, randread: 2, seqwrite: 1.5 };

interface Started {
  target: FioTarget;
  cache: string;
  notes: string[];
  stop(): Promise<void>;
}

/** One job's fio figures and the machine's busy CPU (in cores) while fio ran. */
type JobFigures = FioFigures & { coresBusy: number };

/** Per job; a job left out by BENCH_JOBS has no entry. */
type Figures = Partial<Record<JobKey, JobFigures>>;

/** CPU µs per I/O: the cores busy over the I/O rate. */
function cpuUsPerIo(f: JobFigures): number {
  return (f.coresBusy * 1e6) / f.iops;
}

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  const n = raw === undefined || raw === "" ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`reading ${name}: "${raw}" is not a positive integer`);
  return n;
}

function nbdTarget(name: string, uri: string): FioTarget {
  return { name, engineArgs: ["--ioengine=nbd", `--uri=${uri}`], direct: false };
}

async function startTrivet(): Promise<Started> {
  const t = await startTrivetTarget();
  return { target: nbdTarget("trivet", t.uri), cache: "bricks: O_DIRECT writes >= 128 KiB, page cache for smaller writes and reads", notes: [], stop: t.stop };
}

async function startGlusterSystem(dir: string, tls: boolean): Promise<Started> {
  const name = tls ? "gluster-tls" : "gluster";
  const g = await startGluster({ dir: join(dir, name), volume: "trivetbench", brickHosts: glusterBrickHosts, tls });
  const notes = g.droppedOptions.map((d) => `gluster: virt option ${d.option} dropped: ${d.reason}`);
  // gfapi is synchronous (fio caps its queue depth at 1); gfapi_async is the same library with queueing.
  const engineArgs = ["--ioengine=gfapi_async", `--volume=${g.volume}`, `--brick=${g.host}`, "--filename=bench.img"];
  const cache = `O_DIRECT (virt group: strict-o-direct)${tls ? "; TLS between client and bricks (client.ssl, server.ssl)" : "; plain TCP"}`;
  return { target: { name, engineArgs, direct: true }, cache, notes, stop: g.stop };
}

async function startCeiling(dir: string, sizeBytes: number): Promise<Started> {
  const file = join(dir, "ceiling.raw");
  const socketPath = join(dir, "qsd.sock");
  const pidFile = join(dir, "qsd.pid");
  await writeFile(file, "");
  await truncate(file, sizeBytes);
  const child: ChildProcess = spawn("qemu-storage-daemon", [
    "--blockdev", `driver=file,node-name=file0,filename=${file},cache.direct=off`,
    "--nbd-server", `addr.type=unix,addr.path=${socketPath}`,
    "--export", "type=nbd,id=exp0,node-name=file0,name=disk,writable=on",
    "--pidfile", pidFile,
  ], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (b: Buffer) => (stderr += b.toString()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await gone;
    }
  };
  const deadline = Date.now() + qsdStartTimeoutMs;
  while (!(await readFile(pidFile, "utf8").then(() => true, () => false))) {
    if (Date.now() > deadline || child.exitCode !== null) {
      await stop();
      throw new Error(`starting qemu-storage-daemon on ${socketPath}: not ready after ${qsdStartTimeoutMs} ms: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, qsdPollMs));
  }
  return { target: nbdTarget("ceiling", `nbd+unix:///disk?socket=${socketPath}`), cache: "page cache (qsd cache.direct=off)", notes: [], stop };
}

async function startLocal(dir: string, sizeBytes: number): Promise<Started> {
  const file = join(dir, "local.raw");
  await writeFile(file, "");
  await truncate(file, sizeBytes);
  return { target: { name: "local", engineArgs: ["--ioengine=libaio", `--filename=${file}`], direct: true }, cache: "O_DIRECT (--direct=1)", notes: [], stop: async () => undefined };
}

function syncAll(): Promise<void> {
  return new Promise((resolve) => execFile("sync", [], { timeout: syncTimeoutMs }, () => resolve()));
}

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** Fills the image, then runs every job once; the system is stopped whatever happens. */
async function benchSystem(key: SystemKey, s: Started, jobs: readonly FioJob[], runtimeS: number, rampS: number, sizeBytes: number): Promise<Figures> {
  try {
    for (const n of s.notes) log(n);
    log(`${key}: writing the ${sizeBytes / mib} MiB image once (${s.cache})`);
    await runFio(fillArgs(s.target, sizeBytes), fillTimeoutMs);
    const out: Figures = {};
    for (const job of jobs) {
      await syncAll();
      const before = await machineCpu();
      const fio = await measure(s.target, job, { runtimeS, rampS, sizeBytes });
      const f: JobFigures = { ...fio, coresBusy: busyCores(before, await machineCpu(), cpuCount) };
      log(`${key.padEnd(11)} ${job.label.padEnd(22)} ${f.iops.toFixed(0).padStart(8)} IOPS ${f.mbPerS.toFixed(1).padStart(8)} MB/s  p50 ${f.latP50Us.toFixed(0)} µs  p99 ${f.latP99Us.toFixed(0)} µs  CPU ${f.coresBusy.toFixed(2)} cores, ${cpuUsPerIo(f).toFixed(1)} µs/IO`);
      out[job.key] = f;
    }
    return out;
  } finally {
    await s.stop();
  }
}

function starter(key: SystemKey, dir: string, sizeBytes: number): () => Promise<Started> {
  switch (key) {
    case "trivet": return startTrivet;
    case "gluster": return () => startGlusterSystem(dir, false);
    case "gluster-tls": return () => startGlusterSystem(dir, true);
    case "ceiling": return () => startCeiling(dir, sizeBytes);
    case "local": return () => startLocal(dir, sizeBytes);
  }
}

/** The comma-separated names in `raw`, each checked against `known` (what names `name` the variable, `what` one entry). */
function namesFrom(name: string, what: string, raw: string, known: readonly string[]): string[] {
  const keys = raw.split(",").map((k) => k.trim()).filter(Boolean);
  for (const k of keys) if (!known.includes(k)) throw new Error(`reading ${name}: unknown ${what} "${k}" (known: ${known.join(", ")})`);
  return keys;
}

function selectedSystems(): SystemKey[] {
  return namesFrom("BENCH_SYSTEMS", "system", process.env.BENCH_SYSTEMS ?? systemKeys.join(","), systemKeys) as SystemKey[];
}

function selectedJobs(): FioJob[] {
  const raw = process.env.BENCH_JOBS;
  if (raw === undefined || raw === "") return [...storageJobs];
  const keys = namesFrom("BENCH_JOBS", "job", raw, storageJobs.map((j) => j.key));
  return storageJobs.filter((j) => keys.includes(j.key));
}

/** Keeps the start (what was being done) and the end (usually the cause) of a long reason. */
function shorten(text: string): string {
  return text.length <= reasonCharsMax ? text : `${text.slice(0, reasonCharsMax / 4)} … ${text.slice(-(reasonCharsMax * 3) / 4)}`;
}

function ratios(a: Figures | null, b: Figures | null, of: (f: JobFigures) => number = (f) => f.iops): Record<JobKey, number | null> {
  const out: Partial<Record<JobKey, number | null>> = {};
  for (const job of storageJobs) {
    const x = a?.[job.key];
    const y = b?.[job.key];
    out[job.key] = x === undefined || y === undefined ? null : Math.round((of(x) / of(y)) * 100) / 100;
  }
  return out as Record<JobKey, number | null>;
}

/** Per job, the round whose IOPS is the median (the lower middle of an even count). */
function medianRound(rounds: readonly Figures[]): Figures | null {
  if (rounds.length === 0) return null;
  const out: Figures = {};
  for (const job of storageJobs) {
    const runs = rounds.map((r) => r[job.key]).filter((f): f is JobFigures => f !== undefined).sort((x, y) => x.iops - y.iops);
    const mid = runs[Math.floor((runs.length - 1) / 2)];
    if (mid !== undefined) out[job.key] = mid;
  }
  return out;
}

function printTable(results: Record<SystemKey, Figures | null>, reasons: Partial<Record<SystemKey, string>>, meta: Record<string, unknown>): void {
  const widths = [12, 24, 10, 10, 10, 10, 7, 9];
  const line = (cells: string[]): string => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(" ");
  log(`\n${line(["system", "job", "IOPS", "MB/s", "p50 µs", "p99 µs", "cores", "CPU µs/IO"])}`);
  for (const key of systemKeys) {
    const r = results[key];
    if (r === null) {
      log(line([key, `not available (${reasons[key] ?? "not selected"})`]));
      continue;
    }
    for (const job of storageJobs) {
      const f = r[job.key];
      if (f === undefined) continue;
      log(line([key, job.label, f.iops.toFixed(0), f.mbPerS.toFixed(1), f.latP50Us.toFixed(0), f.latP99Us.toFixed(0), f.coresBusy.toFixed(2), cpuUsPerIo(f).toFixed(1)]));
    }
  }
  const vsGluster = ratios(results.trivet, results.gluster);
  const vsGlusterTls = ratios(results.trivet, results["gluster-tls"]);
  const vsCeiling = ratios(results.trivet, results.ceiling);
  // CPU per I/O of the peer over Trivet's: above 1, Trivet spends less CPU on an I/O.
  const cpuVsGluster = ratios(results.gluster, results.trivet, cpuUsPerIo);
  const cpuVsGlusterTls = ratios(results["gluster-tls"], results.trivet, cpuUsPerIo);
  const fmt = (v: number | null): string => (v === null ? "null" : v.toFixed(2));
  log("\nratio (IOPS)            trivet/gluster  target        trivet/gluster-tls  trivet/ceiling");
  for (const job of storageJobs) {
    const t = targets[job.key];
    const v = vsGluster[job.key];
    const verdict = t === undefined || v === null ? "" : v >= t ? " met" : " MISSED";
    log(`${job.label.padEnd(24)}${fmt(v).padStart(14)}  ${((t === undefined ? "-" : `>=${t}`) + verdict).padEnd(12)}${fmt(vsGlusterTls[job.key]).padStart(20)}${fmt(vsCeiling[job.key]).padStart(16)}`);
  }
  log("\nCPU per I/O, peer/trivet (above 1: trivet spends less)  gluster  gluster-tls");
  for (const job of storageJobs) log(`${job.label.padEnd(56)}${fmt(cpuVsGluster[job.key]).padStart(8)}${fmt(cpuVsGlusterTls[job.key]).padStart(13)}`);
  log(
    JSON.stringify({
      bench: "storage",
      ratios_vs_gluster: vsGluster,
      ratios_vs_ceiling: vsCeiling,
      ratios_vs_gluster_tls: vsGlusterTls,
      cpu_per_io_gluster_over_trivet: { gluster: cpuVsGluster, gluster_tls: cpuVsGlusterTls },
      raw: { ...results, unavailable: reasons, meta },
    }),
  );
}

async function main(): Promise<void> {
  const runtimeS = envInt("BENCH_RUNTIME_S", 8);
  const rampS = envInt("BENCH_RAMP_S", 1);
  const sizeBytes = envInt("BENCH_IMAGE_MIB", 1024) * mib;
  const selected = selectedSystems();
  const jobs = selectedJobs();
  const dir = await mkdtemp(join(process.env.BENCH_DIR ?? tmpdir(), "trivet-bench-storage-"));
  const rounds = envInt("BENCH_ROUNDS", 1);
  const runs: Record<SystemKey, Figures[]> = { trivet: [], gluster: [], "gluster-tls": [], ceiling: [], local: [] };
  const reasons: Partial<Record<SystemKey, string>> = {};
  const loadBefore = loadavg()[0] ?? 0;
  log(`storage bench in ${dir}: ${runtimeS} s per job after ${rampS} s ramp, ${sizeBytes / mib} MiB images, ${rounds} round(s); load average ${loadBefore.toFixed(2)} (shared machine: figures taken under load)`);
  // Ctrl-C must not leave glusterd's bricks or a Trivet cluster running: stop the current system first.
  let current: Started | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    log(`${sig}: stopping the system under test`);
    void (current?.stop() ?? Promise.resolve()).finally(() => rm(dir, { recursive: true, force: true })).finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    for (let round = 1; round <= rounds; round++) {
      if (rounds > 1) log(`round ${round} of ${rounds}`);
      for (const key of systemKeys) {
        // A system that failed once is not tried again: its reason stands.
        if (!selected.includes(key) || reasons[key] !== undefined) continue;
        let started: Started | undefined;
        try {
          started = await starter(key, dir, sizeBytes)();
          current = started;
          runs[key].push(await benchSystem(key, started, jobs, runtimeS, rampS, sizeBytes));
        } catch (err) {
          const why = shorten((err instanceof Error ? err.message : String(err)).replace(/\s+/g, " "));
          reasons[key] = started === undefined ? why : `failed during the run: ${why}`;
          log(`${key}: not available (${reasons[key]})`);
        }
        current = undefined;
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const results = Object.fromEntries(systemKeys.map((k) => [k, reasons[k] === undefined ? medianRound(runs[k]) : null])) as Record<SystemKey, Figures | null>;
  const loadAfter = loadavg()[0] ?? 0;
  printTable(results, reasons, { runtimeS, rampS, rounds, cpus: cpuCount, imageMiB: sizeBytes / mib, loadavg1m: [loadBefore, loadAfter].map((l) => Math.round(l * 100) / 100) });
}

main().catch((err: unknown) => {
  process.stderr.write(`bench storage: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
