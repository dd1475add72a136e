// Shared fio driving for the storage benchmark: the four jobs of the storage issue, the argument
// list for one job against one target, a runner, and a parser of fio's `--output-format=json`
// that keeps what the report needs (IOPS, MB/s, p50/p99/mean completion latency). The parser is
// pure so it can be tested on recorded output.
import { execFile } from "node:child_process";

export const storageJobs = [
  { key: "seqwrite", label: "1 MiB seq write QD16", rw: "write", bs: "1M", depth: 16 },
  { key: "randwrite", label: "4 KiB rand write QD32", rw: "randwrite", bs: "4k", depth: 32 },
  { key: "randread", label: "4 KiB rand read QD32", rw: "randread", bs: "4k", depth: 32 },
  { key: "randwrite_qd1", label: "4 KiB rand write QD1", rw: "randwrite", bs: "4k", depth: 1 },
] as const;

export type FioJob = (typeof storageJobs)[number];
export type JobKey = FioJob["key"];

/** What fio is pointed at: the engine and its target options (--ioengine=…, --uri=… or --filename=…). */
export interface FioTarget {
  name: string;
  engineArgs: string[];
  /** Whether the engine honours --direct=1 (file and gfapi engines do; nbd has no page cache to skip). */
  direct: boolean;
}

export interface FioFigures {
  iops: number;
  /** Decimal megabytes per second (fio's bw_bytes / 1e6). */
  mbPerS: number;
  latP50Us: number;
  latP99Us: number;
  latMeanUs: number;
}

export type FioErrorCode = "fio_failed" | "fio_output" | "fio_job_error";

export class FioError extends Error {
  constructor(readonly code: FioErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "FioError";
  }
}

export interface TimedRun {
  runtimeS: number;
  rampS: number;
  sizeBytes: number;
}

/** The argv (without "fio") for one timed job against one target; JSON output. */
export function fioArgs(target: FioTarget, job: FioJob, run: TimedRun): string[] {
  return [
    `--name=${job.key}`,
    ...target.engineArgs,
    `--rw=${job.rw}`,
    `--bs=${job.bs}`,
    `--iodepth=${job.depth}`,
    `--size=${run.sizeBytes}`,
    ...(target.direct ? ["--direct=1"] : []),
    "--time_based",
    `--runtime=${run.runtimeS}`,
    `--ramp_time=${run.rampS}`,
    "--randrepeat=0",
    "--output-format=json",
  ];
}

/** The argv that writes the whole image once (1 MiB sequential), so reads hit written data. */
export function fillArgs(target: FioTarget, sizeBytes: number): string[] {
  return [
    "--name=fill",
    ...target.engineArgs,
    "--rw=write",
    "--bs=1M",
    "--iodepth=16",
    `--size=${sizeBytes}`,
    ...(target.direct ? ["--direct=1"] : []),
    "--output-format=json",
  ];
}

interface Side {
  iops: number;
  bw_bytes: number;
  total_ios: number;
  clat_ns: { mean: number; N: number; percentile?: Record<string, number> };
}

interface FioJson {
  jobs?: { jobname: string; error: number; read?: Side; write?: Side }[];
}

function percentile(side: Side, key: string, what: string): number {
  const v = side.clat_ns.percentile?.[key];
  if (v === undefined) throw new FioError("fio_output", `parsing fio output of ${what}: no ${key} percentile of completion latency`);
  return v / 1000;
}

/**
 * Figures of the first job in fio's JSON output, from its read or write side. fio may print
 * notes ("note: both iodepth >= 1 and synchronous I/O engine…") before the JSON; they are skipped.
 */
export function parseFioJson(output: string, side: "read" | "write"): FioFigures {
  const start = output.search(/^\{/m);
  if (start < 0) throw new FioError("fio_output", `parsing fio output: no JSON object in ${JSON.stringify(output.slice(0, 200))}`);
  let parsed: FioJson;
  try {
    parsed = JSON.parse(output.slice(start)) as FioJson;
  } catch (err) {
    throw new FioError("fio_output", `parsing fio output: ${(err as Error).message}`, { cause: err });
  }
  const job = parsed.jobs?.[0];
  if (job === undefined) throw new FioError("fio_output", "parsing fio output: no job in it");
  const what = `job ${job.jobname}`;
  if (job.error !== 0) throw new FioError("fio_job_error", `fio ${what} failed with error ${job.error}`);
  const s = job[side];
  if (s === undefined || s.total_ios === 0) throw new FioError("fio_output", `parsing fio output of ${what}: no ${side} I/O was done`);
  return {
    iops: s.iops,
    mbPerS: s.bw_bytes / 1e6,
    latP50Us: percentile(s, "50.000000", what),
    latP99Us: percentile(s, "99.000000", what),
    latMeanUs: s.clat_ns.mean / 1000,
  };
}

export const fioSlackMs = 120_000;
const fioOutputBytesMax = 16 * 1024 * 1024;

/** Runs fio to completion and returns its stdout; a non-zero exit is a FioError with fio's stderr. */
export function runFio(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("fio", args, { timeout: timeoutMs, maxBuffer: fioOutputBytesMax }, (err, stdout, stderr) => {
      if (err === null) return resolve(stdout);
      const detail = String(stderr).trim() || err.message;
      reject(new FioError("fio_failed", `running fio ${args.join(" ")}: ${detail.slice(-2000)}`, { cause: err }));
    });
  });
}

/** One timed job against one target. */
export async function measure(target: FioTarget, job: FioJob, run: TimedRun): Promise<FioFigures> {
  const out = await runFio(fioArgs(target, job, run), (run.runtimeS + run.rampS) * 1000 + fioSlackMs);
  return parseFioJson(out, job.rw === "randread" ? "read" : "write");
}
