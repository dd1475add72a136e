// The VM pages' rules for states and actions.
import { describe, expect, it } from "vitest";
import { actionAllowed, serialConsoleUrl, stateColor, stateRank, vmState, type VmAction } from "./vm-state.ts";

const offered = (state: string) => (["start", "shutdown", "stop", "pause", "resume", "delete"] as VmAction[]).filter((a) => actionAllowed(a, state));

describe("VM state rules", () => {
  it("offers the actions that fit each state", () => {
    expect(offered("running")).toEqual(["shutdown", "stop", "pause"]);
    expect(offered("paused")).toEqual(["stop", "resume"]);
    expect(offered("stopped")).toEqual(["start", "delete"]);
    expect(offered("crashed")).toEqual(["start", "delete"]);
    expect(offered("starting")).toEqual(["shutdown", "stop"]);
  });

  it("calls a VM without a report pending, and ranks running first", () => {
    expect(vmState({ id: "1", name: "a" })).toBe("pending");
    expect(vmState({ id: "1", name: "a", status: { state: "running" } })).toBe("running");
    expect(stateRank("running")).toBeLessThan(stateRank("stopped"));
    expect(stateRank("something-new")).toBe(9);
    expect(stateColor("failed")).toBe("red");
  });

  it("builds the serial console URL on the same node, escaping the name", () => {
    expect(serialConsoleUrl({ protocol: "https:", host: "10.0.0.1:8006" }, "web 1")).toBe("wss://10.0.0.1:8006/api/v1/console/serial/web%201");
  });
});
