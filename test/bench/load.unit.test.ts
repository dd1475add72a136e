// Tests of the benchmark load generator against fake systems whose latency and failures
// are known, so the figures it reports can be checked (closed loop, warm-up, percentiles,
// error accounting, failover timing, merging of worker results).
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { FailoverTimeoutError, makeKey, measureFailover, percentile, runLoad } from "./load.ts";
import type { LoadResult } from "./load.ts";
import { mergeResults, splitClients } from "./load-workers.ts";

describe("percentile", () => {
  it("uses the nearest rank", () => {
    const values = Float64Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(values, 50)).toBe(50);
    expect(percentile(values, 99)).toBe(99);
    expect(percentile(values, 100)).toBe(100);
    expect(percentile(Float64Array.of(7), 99)).toBe(7);
    expect(percentile(new Float64Array(0), 50)).toBeNaN();
  });
});

describe("runLoad", () => {
  it("keeps exactly `clients` writes outstanding with 8-byte keys and 256-byte values", async () => {
    let outstanding = 0;
    let outstandingMax = 0;
    const keys = new Set<string>();
    const result = await runLoad({
      clients: 7,
      warmupMs: 0,
      durationMs: 300,
      keySpaceSize: 5,
      write: async (key, value) => {
        expect(key.length).toBe(8);
        expect(value.length).toBe(256);
        keys.add(key.toString("hex"));
        outstanding++;
        outstandingMax = Math.max(outstandingMax, outstanding);
        await sleep(5);
        outstanding--;
      },
    });
    expect(outstandingMax).toBe(7);
    expect(keys.size).toBe(5);
    expect(result.errors).toBe(0);
    expect(result.writes).toBeGreaterThan(7);
  });

  it("reports the latency of the system and a throughput consistent with it", async () => {
    const delayMs = 20;
    const clients = 4;
    const result = await runLoad({ clients, warmupMs: 100, durationMs: 600, write: () => sleep(delayMs) });
    expect(result.p50Ms).toBeGreaterThanOrEqual(delayMs - 1);
    expect(result.p99Ms).toBeGreaterThanOrEqual(result.p50Ms);
    // A closed loop cannot beat clients / latency.
    expect(result.writesPerSec).toBeLessThanOrEqual((clients * 1000) / (delayMs - 1));
    expect(result.writesPerSec).toBeGreaterThan(0);
    expect(result.latenciesMs.length).toBe(result.writes);
  });

  it("does not count writes made during the warm-up", async () => {
    const seen: number[] = [];
    const result = await runLoad({ clients: 1, warmupMs: 300, durationMs: 200, write: async (key) => {
      seen.push(Number(key.readBigUInt64BE()));
      await sleep(10);
    } });
    expect(seen.length).toBeGreaterThan(result.writes);
    expect(result.writes).toBeLessThanOrEqual(20);
  });

  it("counts failures, keeps the first message and backs off instead of spinning", async () => {
    let calls = 0;
    const result = await runLoad({ clients: 2, warmupMs: 0, durationMs: 200, errorBackoffMs: 20, write: async () => {
      calls++;
      throw new Error("leader unavailable");
    } });
    expect(result.writes).toBe(0);
    expect(result.errors).toBeGreaterThan(0);
    expect(result.firstError).toBe("leader unavailable");
    expect(calls).toBeLessThanOrEqual(2 * (200 / 20 + 2));
    expect(result.p99Ms).toBeNaN();
  });
});

describe("measureFailover", () => {
  it("times from the kill to the first acknowledged write after it", async () => {
    const outageMs = 150;
    let downUntil = 0;
    const result = await measureFailover({
      steadyMs: 50,
      retryBackoffMs: 5,
      write: async () => {
        await sleep(1);
        if (performance.now() < downUntil) throw new Error("no leader");
      },
      killLeader: async () => {
        downUntil = performance.now() + outageMs;
      },
    });
    expect(result.failoverMs).toBeGreaterThanOrEqual(outageMs - 1);
    expect(result.failoverMs).toBeLessThan(outageMs + 500);
    expect(result.failedAttempts).toBeGreaterThan(0);
  });

  it("gives up after its bound when no write is ever acknowledged again", async () => {
    let killed = false;
    const run = measureFailover({
      steadyMs: 10,
      timeoutMs: 100,
      write: async () => {
        await sleep(1);
        if (killed) throw new Error("cluster gone");
      },
      killLeader: async () => {
        killed = true;
      },
    });
    await expect(run).rejects.toBeInstanceOf(FailoverTimeoutError);
    await expect(run).rejects.toThrow(/no write acknowledged within 100 ms/);
  });
});

describe("load workers", () => {
  it("splits clients evenly and never hands a worker zero clients", () => {
    expect(splitClients(1000, 3)).toEqual([334, 333, 333]);
    expect(splitClients(1, 2)).toEqual([1]);
    expect(splitClients(4, 2)).toEqual([2, 2]);
  });

  it("merges results over the same window into one distribution", () => {
    const part = (lat: number[], errors: number): LoadResult => ({
      writes: lat.length, writesPerSec: 0, p50Ms: 0, p99Ms: 0, errors,
      latenciesMs: Float64Array.from(lat), windowMs: 1000, firstError: errors ? "e" : undefined,
    });
    const merged = mergeResults([part([1, 3, 5], 0), part([2, 4, 100], 2)], 1000);
    expect([...merged.latenciesMs]).toEqual([1, 2, 3, 4, 5, 100]);
    expect(merged.writes).toBe(6);
    expect(merged.writesPerSec).toBe(6);
    expect(merged.p50Ms).toBe(3);
    expect(merged.p99Ms).toBe(100);
    expect(merged.errors).toBe(2);
    expect(merged.firstError).toBe("e");
  });

  it("makes big-endian 8-byte keys", () => {
    expect(makeKey(258).toString("hex")).toBe("0000000000000102");
  });
});
