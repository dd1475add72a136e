// Runs the closed-loop load of load.ts in several worker threads and merges the results.
// Why: with 1000 clients a single Node event loop (gRPC framing, protobuf, promise churn) can
// saturate one core before the cluster under test does, and then the benchmark would measure
// the client. Each worker builds its own writer (own connections) from a WriterSpec.
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import { setTimeout as sleep } from "node:timers/promises";
import { keySpaceSizeDefault, percentile, runLoad } from "./load.ts";
import type { LoadResult } from "./load.ts";
import type { Writer, WriterSpec } from "./target.ts";

/** Creating a writer only opens channels; this bounds a worker that hangs while starting. */
export const workerReadyTimeoutMs = 30_000;
/** Added to warm-up + duration + drain before a silent worker is given up on. */
export const workerResultSlackMs = 30_000;

export interface WorkerLoadOptions {
  workers: number;
  clients: number;
  durationMs: number;
  warmupMs: number;
  /** Called once per worker with its share of the clients (so it can size its channels). */
  writerSpec(clientsOfWorker: number): WriterSpec;
}

interface WorkerInput {
  kind: "trivet-bench-load";
  spec: WriterSpec;
  clients: number;
  durationMs: number;
  warmupMs: number;
  keyOffset: number;
  keySpaceSize: number;
}

type WorkerMessage = { type: "ready" } | { type: "result"; result: LoadResult } | { type: "error"; message: string };

/** Splits `clients` as evenly as possible over `workers`, dropping empty shares. */
export function splitClients(clients: number, workers: number): number[] {
  const shares: number[] = [];
  for (let i = 0; i < workers; i++) shares.push(Math.floor(clients / workers) + (i < clients % workers ? 1 : 0));
  return shares.filter((s) => s > 0);
}

/** Merges per-worker results measured over the same window. */
export function mergeResults(results: readonly LoadResult[], durationMs: number): LoadResult {
  const total = results.reduce((n, r) => n + r.latenciesMs.length, 0);
  const all = new Float64Array(total);
  let at = 0;
  for (const r of results) {
    all.set(r.latenciesMs, at);
    at += r.latenciesMs.length;
  }
  all.sort();
  const writes = results.reduce((n, r) => n + r.writes, 0);
  return {
    writes,
    writesPerSec: writes / (durationMs / 1000),
    p50Ms: percentile(all, 50),
    p99Ms: percentile(all, 99),
    errors: results.reduce((n, r) => n + r.errors, 0),
    latenciesMs: all,
    windowMs: durationMs,
    firstError: results.find((r) => r.firstError !== undefined)?.firstError,
  };
}

function nextMessage(w: Worker, timeoutMs: number, what: string): Promise<WorkerMessage> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no answer from load worker within ${timeoutMs} ms`)), timeoutMs);
    w.once("message", (m: WorkerMessage) => {
      clearTimeout(timer);
      if (m.type === "error") reject(new Error(`${what}: ${m.message}`));
      else resolve(m);
    });
    w.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/**
 * Worker code that can load TypeScript: on Node 20 the loader hooks that tsx installs in the
 * main thread do not reach worker threads, so each worker registers tsx itself, then imports
 * this module, whose last lines start the worker's load.
 */
function workerBootstrap(): string {
  const tsxApi = import.meta.resolve("tsx/esm/api");
  const self = import.meta.url;
  return `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(self)}); });`;
}

export async function runLoadInWorkers(options: WorkerLoadOptions): Promise<LoadResult> {
  const shares = splitClients(options.clients, options.workers);
  const workers = shares.map((clients, i) => {
    const input: WorkerInput = {
      kind: "trivet-bench-load",
      spec: options.writerSpec(clients),
      clients,
      durationMs: options.durationMs,
      warmupMs: options.warmupMs,
      keyOffset: i * 1_000_000_000,
      // The same number of distinct keys in total, however many workers share the load.
      keySpaceSize: Math.ceil(keySpaceSizeDefault / shares.length),
    };
    return new Worker(workerBootstrap(), { eval: true, workerData: input });
  });
  try {
    await Promise.all(workers.map((w, i) => nextMessage(w, workerReadyTimeoutMs, `starting load worker ${i}`)));
    const resultTimeoutMs = options.warmupMs + options.durationMs + workerResultSlackMs;
    const results = workers.map((w, i) => nextMessage(w, resultTimeoutMs, `load worker ${i}`));
    for (const w of workers) w.postMessage("go");
    const answers = await Promise.all(results);
    return mergeResults(answers.map((a) => (a as { result: LoadResult }).result), options.durationMs);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

async function workerMain(input: WorkerInput): Promise<void> {
  const port = parentPort;
  if (!port) return;
  let writer: Writer | undefined;
  try {
    const mod = (await import(input.spec.module)) as { createWriter(config: unknown): Promise<Writer> };
    writer = await mod.createWriter(input.spec.config);
    const go = new Promise<void>((resolve) => port.once("message", () => resolve()));
    port.postMessage({ type: "ready" } satisfies WorkerMessage);
    await go;
    const result = await runLoad({ clients: input.clients, durationMs: input.durationMs, warmupMs: input.warmupMs, write: writer.write, keyOffset: input.keyOffset, keySpaceSize: input.keySpaceSize });
    port.postMessage({ type: "result", result } satisfies WorkerMessage, [result.latenciesMs.buffer as ArrayBuffer]);
  } catch (err) {
    port.postMessage({ type: "error", message: err instanceof Error ? err.message : String(err) } satisfies WorkerMessage);
  } finally {
    writer?.close();
    await sleep(0);
  }
}

if (!isMainThread && (workerData as Partial<WorkerInput> | null)?.kind === "trivet-bench-load") {
  void workerMain(workerData as WorkerInput);
}
