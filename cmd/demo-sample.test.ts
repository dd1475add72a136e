// Starting the demo's sample VM against a scripted API: a start that fails is retried a bounded
// number of times, a failure reported before the start was asked is not taken for its outcome,
// and when QEMU never starts the caller gets QEMU's error rather than an exception.
import { describe, expect, it } from "vitest";
import type { ApiClient } from "../core/api/client.ts";
import { ApiError } from "../core/api/server/errors.ts";
import { retryTransient, sampleStartAttemptsMax, startSampleVm, stopSampleVm, type Clock } from "./demo-sample.ts";

interface Status {
  state: string;
  pid: bigint;
  error: string;
  reportedAtMs: bigint;
}

/** A fake VmService: each startVm runs `onStart(attempt, now)`, which sets the status to report. */
function fakeApi(clock: { t: number }, onStart: (attempt: number, now: number) => Status, initial: Status) {
  let status = initial;
  const calls: string[] = [];
  const api = {
    call: async (_service: unknown, method: string) => {
      calls.push(method);
      if (method === "getVm") return { vm: { name: "sample", nodeName: "node2", status } };
      if (method === "startVm") status = onStart(calls.filter((c) => c === "startVm").length, clock.t);
      if (method === "stopVm") status = { ...status, state: "stopped", pid: 0n, reportedAtMs: BigInt(clock.t) };
      return {};
    },
  };
  return { api: api as unknown as ApiClient, calls };
}

function fakeClock(): Clock & { t: number } {
  const c = { t: 1_000_000, now: () => c.t, sleep: async (ms: number) => void (c.t += ms) };
  return c;
}

const stopped: Status = { state: "stopped", pid: 0n, error: "", reportedAtMs: 1n };

describe("startSampleVm", () => {
  it("retries a failed start and reports the VM once it runs", async () => {
    const clock = fakeClock();
    const { api, calls } = fakeApi(clock, (n, now) => (n === 1
      ? { state: "failed", pid: 0n, error: "nbd: export not found", reportedAtMs: BigInt(now) }
      : { state: "running", pid: 4242n, error: "", reportedAtMs: BigInt(now) }), stopped);
    const r = await startSampleVm(api, clock);
    expect(r.ok).toBe(true);
    expect(r.ok && r.vm.status?.pid).toBe(4242n);
    expect(calls.filter((c) => c === "startVm")).toHaveLength(2);
  });

  it("gives QEMU's error after the last attempt instead of throwing", async () => {
    const clock = fakeClock();
    const { api, calls } = fakeApi(clock, (_n, now) => ({ state: "failed", pid: 0n, error: "qemu-system-x86_64: -kernel /x: No such file", reportedAtMs: BigInt(now) }), stopped);
    const r = await startSampleVm(api, clock);
    expect(r).toEqual({ ok: false, error: `VM sample on node2: failed: qemu-system-x86_64: -kernel /x: No such file (attempt ${sampleStartAttemptsMax} of ${sampleStartAttemptsMax})` });
    expect(calls.filter((c) => c === "startVm")).toHaveLength(sampleStartAttemptsMax);
  });

  it("does not take a failure reported before the start for its outcome", async () => {
    const clock = fakeClock();
    const old: Status = { state: "failed", pid: 0n, error: "from last time", reportedAtMs: BigInt(clock.t - 5000) };
    // The agent never reports on the new start: the old failure must not end the wait early.
    const { api, calls } = fakeApi(clock, () => old, old);
    const r = await startSampleVm(api, clock, 10_000);
    expect(r.ok).toBe(false);
    expect(calls.filter((c) => c === "startVm")).toHaveLength(1);
    expect(!r.ok && r.error).toBe("VM sample did not report running within 10 s");
  });

  it("does not start a VM that already runs", async () => {
    const clock = fakeClock();
    const { api, calls } = fakeApi(clock, () => stopped, { state: "running", pid: 7n, error: "", reportedAtMs: 1n });
    expect((await startSampleVm(api, clock)).ok).toBe(true);
    expect(calls).not.toContain("startVm");
  });
});

describe("stopSampleVm", () => {
  it("stops a running VM and returns the QEMU pid it saw; a stopped one is left alone", async () => {
    const clock = fakeClock();
    const running = fakeApi(clock, () => stopped, { state: "running", pid: 99n, error: "", reportedAtMs: 1n });
    expect(await stopSampleVm(running.api, clock)).toBe(99);
    expect(running.calls).toContain("stopVm");
    const idle = fakeApi(clock, () => stopped, stopped);
    expect(await stopSampleVm(idle.api, clock)).toBeUndefined();
    expect(idle.calls).not.toContain("stopVm");
  });
});

describe("retryTransient", () => {
  const noFacts = new ApiError("failed_precondition", "no node has reported its host facts yet; wait for the host agents to start", { field: "config" });

  it("waits out a cluster that has not settled yet", async () => {
    const clock = fakeClock();
    let calls = 0;
    const r = await retryTransient(async () => {
      if (++calls < 4) throw noFacts;
      return "created";
    }, clock, 60_000);
    expect(r).toBe("created");
    expect(calls).toBe(4);
  });

  it("passes other refusals on at once, and a transient one after the wait", async () => {
    const clock = fakeClock();
    let calls = 0;
    const bad = new ApiError("invalid_argument", "config.vcpus: must be positive");
    await expect(retryTransient(async () => {
      calls++;
      throw bad;
    }, clock, 60_000)).rejects.toBe(bad);
    expect(calls).toBe(1);
    const t0 = clock.now();
    await expect(retryTransient(async () => {
      throw noFacts;
    }, clock, 5000)).rejects.toBe(noFacts);
    expect(clock.now() - t0).toBeGreaterThanOrEqual(5000);
    expect(clock.now() - t0).toBeLessThan(6000);
  });
});
