// The benchmark's load generator, shared by every system under test: a closed loop of
// `clients` concurrent writers (each waits for its ack before its next write, so at most
// `clients` writes are outstanding), 8-byte keys and 256-byte values, a warm-up that is not
// measured, then writes/s and latency percentiles; and the leader-failover measurement.
import { performance } from "node:perf_hooks";
import { setTimeout as sleepDefault } from "node:timers/promises";
import { keyBytes, valueBytes } from "./target.ts";
import type { WriteFn } from "./target.ts";

/** Keys cycle through this many distinct values so the store's size stays bounded. */
export const keySpaceSizeDefault = 100_000;
/** After the run ends, outstanding writes get this long to finish before they are abandoned. */
export const drainTimeoutMsDefault = 15_000;
/** A client whose write failed waits this long before the next, so errors cannot spin. */
export const errorBackoffMsDefault = 10;

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = { now: () => performance.now(), sleep: (ms) => sleepDefault(ms) };

export interface LoadOptions {
  clients: number;
  durationMs: number;
  warmupMs: number;
  write: WriteFn;
  clock?: Clock;
  keySpaceSize?: number;
  /** Offsets keys so that several load workers do not write the same key sequence. */
  keyOffset?: number;
  drainTimeoutMs?: number;
  errorBackoffMs?: number;
}

export interface LoadResult {
  /** Writes acknowledged inside the measured window (after warm-up). */
  writes: number;
  writesPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Failed writes inside the measured window. */
  errors: number;
  /** Latencies of the measured writes, ascending; kept so several workers can be merged. */
  latenciesMs: Float64Array;
  /** Length of the measured window. */
  windowMs: number;
  /** First error message seen, to say why a run had errors. */
  firstError: string | undefined;
}

/** Latency record: a growable array sorted once at the end (exact percentiles). */
export class LatencyRecord {
  private values = new Float64Array(1024);
  private length = 0;

  add(ms: number): void {
    if (this.length === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.length++] = ms;
  }

  sorted(): Float64Array {
    return this.values.slice(0, this.length).sort();
  }
}

/** Nearest-rank percentile of an ascending array; NaN when empty. */
export function percentile(sortedMs: Float64Array, p: number): number {
  if (sortedMs.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sortedMs.length);
  return sortedMs[Math.min(sortedMs.length, Math.max(1, rank)) - 1] as number;
}

export function makeKey(n: number): Buffer {
  const key = Buffer.alloc(keyBytes);
  key.writeBigUInt64BE(BigInt(n));
  return key;
}

/** A fixed, non-repeating-looking 256-byte value; content does not matter to either system. */
export function makeValue(): Buffer {
  const value = Buffer.alloc(valueBytes);
  for (let i = 0; i < valueBytes; i++) value[i] = (i * 131 + 7) & 0xff;
  return value;
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const clock = options.clock ?? realClock;
  const keySpace = options.keySpaceSize ?? keySpaceSizeDefault;
  const keyOffset = options.keyOffset ?? 0;
  const backoffMs = options.errorBackoffMs ?? errorBackoffMsDefault;
  const value = makeValue();
  const record = new LatencyRecord();
  const start = clock.now();
  const measureFrom = start + options.warmupMs;
  const end = measureFrom + options.durationMs;
  let seq = 0;
  let writes = 0;
  let errors = 0;
  let firstError: string | undefined;

  const client = async (): Promise<void> => {
    while (clock.now() < end) {
      const key = makeKey(keyOffset + (seq++ % keySpace));
      const t0 = clock.now();
      try {
        await options.write(key, value);
        const t1 = clock.now();
        if (t0 >= measureFrom && t1 <= end) {
          writes++;
          record.add(t1 - t0);
        }
      } catch (err) {
        if (t0 >= measureFrom && clock.now() <= end) errors++;
        firstError ??= err instanceof Error ? err.message : String(err);
        await clock.sleep(backoffMs);
      }
    }
  };

  const all = Promise.all(Array.from({ length: options.clients }, () => client()));
  const drainMs = options.drainTimeoutMs ?? drainTimeoutMsDefault;
  const timedOut = Symbol("timeout");
  const outcome = await Promise.race([all, clock.sleep(options.warmupMs + options.durationMs + drainMs).then(() => timedOut)]);
  if (outcome === timedOut) firstError ??= `some writes were still outstanding ${drainMs} ms after the run ended`;
  const latenciesMs = record.sorted();
  return {
    writes,
    writesPerSec: writes / (options.durationMs / 1000),
    p50Ms: percentile(latenciesMs, 50),
    p99Ms: percentile(latenciesMs, 99),
    errors,
    latenciesMs,
    windowMs: options.durationMs,
    firstError,
  };
}

export interface FailoverOptions {
  write: WriteFn;
  killLeader(): Promise<void>;
  clock?: Clock;
  /** Steady writing before the kill, so connections are warm and the leader is known. */
  steadyMs?: number;
  /** Give up if no write is acknowledged this long after the kill. */
  timeoutMs?: number;
  retryBackoffMs?: number;
}

export interface FailoverResult {
  /** From the kill -9 to the first acknowledged write issued after it. */
  failoverMs: number;
  /** Failed attempts between the kill and that write. */
  failedAttempts: number;
}

export class FailoverTimeoutError extends Error {
  readonly code = "FAILOVER_TIMEOUT";
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = "FailoverTimeoutError";
  }
}

/**
 * One writer writes steadily; after `steadyMs` the leader is killed and the writer keeps
 * going (retrying with a small backoff) until a write issued after the kill is acknowledged.
 */
export async function measureFailover(options: FailoverOptions): Promise<FailoverResult> {
  const clock = options.clock ?? realClock;
  const steadyMs = options.steadyMs ?? 1_000;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const backoffMs = options.retryBackoffMs ?? 10;
  const value = makeValue();
  const steadyEnd = clock.now() + steadyMs;
  let seq = 0;
  while (clock.now() < steadyEnd) {
    await options.write(makeKey(seq++), value); // a failure here means the system was not healthy
  }
  await options.killLeader();
  const killedAt = clock.now();
  let failedAttempts = 0;
  let lastError: unknown;
  while (clock.now() - killedAt < timeoutMs) {
    try {
      await options.write(makeKey(seq++), value);
      return { failoverMs: clock.now() - killedAt, failedAttempts };
    } catch (err) {
      failedAttempts++;
      lastError = err;
      await clock.sleep(backoffMs);
    }
  }
  throw new FailoverTimeoutError(`measuring failover: no write acknowledged within ${timeoutMs} ms of killing the leader (${failedAttempts} failed attempts)`, lastError);
}
