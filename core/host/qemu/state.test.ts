// Tests of the VM run-state reducer: QEMU statuses, events and exits in, the state a user sees out.
import { describe, expect, it } from "vitest";
import { initialVmState, reduceVmState } from "./state.ts";
import type { VmStateContext, VmStateInput } from "./state.ts";

const ev = (event: string, data: Record<string, unknown> = {}): VmStateInput => ({ type: "event", event, data });
const exit = (code: number | null, signal: string | null, stopRequested = false, known = true): VmStateInput => ({ type: "exit", exit: { code, signal, known }, stopRequested });
const run = (...inputs: VmStateInput[]): VmStateContext => inputs.reduce(reduceVmState, initialVmState);

describe("reduceVmState", () => {
  it.each([
    ["running", "running"],
    ["paused", "paused"],
    ["prelaunch", "paused"],
    ["io-error", "paused"],
    ["shutdown", "shutting-down"],
    ["guest-panicked", "crashed"],
    ["internal-error", "crashed"],
  ])("query-status %s is %s", (status, state) => {
    expect(run({ type: "status", status }).state).toBe(state);
  });

  it("follows STOP and RESUME", () => {
    expect(run({ type: "status", status: "running" }, ev("STOP")).state).toBe("paused");
    expect(run({ type: "status", status: "running" }, ev("STOP"), ev("RESUME")).state).toBe("running");
  });

  it("RESET and POWERDOWN do not change the run state", () => {
    expect(run({ type: "status", status: "running" }, ev("POWERDOWN"), ev("RESET")).state).toBe("running");
  });

  it("a guest power-off is shutdown; a host quit is stopped", () => {
    const guestOff = run({ type: "status", status: "running" }, ev("SHUTDOWN", { guest: true, reason: "guest-shutdown" }));
    expect(guestOff).toEqual({ state: "shutting-down", shutdownReason: "guest-shutdown" });
    expect(reduceVmState(guestOff, exit(0, null)).state).toBe("shutdown");
    const quit = run({ type: "status", status: "running" }, ev("SHUTDOWN", { guest: false, reason: "host-qmp-quit" }), exit(0, null));
    expect(quit.state).toBe("stopped");
  });

  it("a forced stop is stopped whatever the exit status", () => {
    expect(run({ type: "status", status: "running" }, exit(null, "SIGKILL", true)).state).toBe("stopped");
  });

  it("an exit nobody asked for, without a shutdown, is a crash", () => {
    expect(run({ type: "status", status: "running" }, exit(null, "SIGSEGV")).state).toBe("crashed");
    expect(run({ type: "status", status: "running" }, exit(1, null)).state).toBe("crashed");
  });

  it("after a re-attach the exit status is unknown: the last SHUTDOWN reason decides", () => {
    expect(run(ev("SHUTDOWN", { guest: true, reason: "guest-shutdown" }), exit(null, null, false, false)).state).toBe("shutdown");
    expect(run({ type: "status", status: "running" }, exit(null, null, false, false)).state).toBe("crashed");
  });

  it("a panic stays a crash through the exit, and a terminal state ignores later events", () => {
    const panicked = run({ type: "status", status: "running" }, ev("GUEST_PANICKED", { action: "pause" }));
    expect(panicked.state).toBe("crashed");
    expect(reduceVmState(panicked, ev("RESUME")).state).toBe("crashed");
    expect(reduceVmState(panicked, exit(0, null, true)).state).toBe("crashed");
  });

  it("STOP while shutting down does not make it look paused", () => {
    expect(run(ev("SHUTDOWN", { guest: true, reason: "guest-shutdown" }), ev("STOP")).state).toBe("shutting-down");
  });
});
