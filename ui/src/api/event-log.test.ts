// The browser's log of recent events: what counts as an alert, and recording from the hub.
import { describe, expect, it } from "vitest";
import { createRing } from "../app/ring.ts";
import { isAlert, recordEvents } from "./event-log.ts";
import type { ApiEvent, EventHub, EventListener } from "./events.ts";

const ev = (kind: string, fields: Record<string, string> = {}, timeMs = 5): ApiEvent => ({ id: "1", kind, object: "x/y", fields, timeMs, message: "" });

describe("event log", () => {
  it("treats a node down, a crashed VM, a running VM's error, a lost leader and an alert as alerts, and nothing else", () => {
    expect(isAlert(ev("node.health", { health: "down", previous: "up" }))).toBe(true);
    expect(isAlert(ev("node.health", { health: "up", previous: "down" }))).toBe(false);
    expect(isAlert(ev("vm.state", { state: "crashed" }))).toBe(true);
    expect(isAlert(ev("vm.state", { state: "running" }))).toBe(false);
    expect(isAlert(ev("vm.error", { state: "running", error: "growing disk disk0: refused" }))).toBe(true);
    expect(isAlert(ev("cluster.leader", { leader: "0", term: "4" }))).toBe(true);
    expect(isAlert(ev("cluster.leader", { leader: "2", term: "4" }))).toBe(false);
    expect(isAlert(ev("alert"))).toBe(true);
    expect(isAlert(ev("audit", { result: "ok" }))).toBe(false);
  });

  it("records events until stopped, dating undated ones, skipping the reconnect signal", () => {
    let listener: EventListener | undefined;
    const hub: EventHub = { subscribe: (l) => { listener = l; return () => { listener = undefined; }; } };
    const log = createRing<ApiEvent>(10);
    const stop = recordEvents(hub, log);
    listener!(ev("vm.state", {}, 42));
    listener!(undefined);
    const before = Date.now();
    listener!(ev("audit", {}, 0));
    expect(log.items().map((e) => e.kind)).toEqual(["vm.state", "audit"]);
    expect(log.items()[0]!.timeMs).toBe(42);
    expect(log.items()[1]!.timeMs).toBeGreaterThanOrEqual(before);
    stop();
    expect(listener).toBeUndefined();
  });
});
