// Tests of the QMP monitor against the fake QMP server: replies matched by id, command errors,
// events, per-command timeouts (driven by injected timers), a socket that closes mid-command,
// and garbage on the wire.
import { afterEach, describe, expect, it } from "vitest";
import { FakeQmpServer } from "./fake-server.ts";
import type { FakeHandler } from "./fake-server.ts";
import { QmpMonitor, qmpPendingCommandsMax } from "./monitor.ts";
import type { QmpEvent, QmpTimers } from "./monitor.ts";

/** Timers that fire only when the test says so. */
class ManualTimers implements QmpTimers {
  private readonly due = new Map<number, { fn: () => void; ms: number }>();
  private next = 1;
  setTimeout(fn: () => void, ms: number): unknown {
    const h = this.next++;
    this.due.set(h, { fn, ms });
    return h;
  }
  clearTimeout(h: unknown): void {
    this.due.delete(h as number);
  }
  get armed(): number[] {
    return [...this.due.values()].map((t) => t.ms);
  }
  fireAll(): void {
    const all = [...this.due.values()];
    this.due.clear();
    for (const t of all) t.fn();
  }
}

function waitUntil(cond: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const poll = (): void => {
      if (cond()) resolve();
      else if (Date.now() > deadline) reject(new Error(`condition not met within ${timeoutMs} ms`));
      else setTimeout(poll, 5);
    };
    poll();
  });
}

let fake: FakeQmpServer | undefined;
let monitor: QmpMonitor | undefined;
afterEach(async () => {
  monitor?.close();
  await fake?.close();
  fake = undefined;
  monitor = undefined;
});

async function setup(handler?: FakeHandler, timers?: QmpTimers): Promise<{ fake: FakeQmpServer; monitor: QmpMonitor }> {
  fake = await FakeQmpServer.start(handler);
  monitor = await QmpMonitor.connect(fake.socketPath, { name: "QMP of web1", timers });
  return { fake, monitor };
}

describe("QmpMonitor", () => {
  it("matches replies to commands by id, even when QEMU answers out of order", async () => {
    const { fake, monitor } = await setup();
    fake.handler = (command) => (command === "slow" ? "ignore" : { return: { command } });
    const slow = monitor.execute("slow", undefined, 2000);
    const fast = await monitor.execute("query-status", undefined, 2000);
    expect(fast).toEqual({ command: "query-status" });
    expect(fake.received.map((r) => r.command)).toEqual(["slow", "query-status"]);
    monitor.close();
    await expect(slow).rejects.toMatchObject({ code: "closed", details: { command: "slow" } });
  });

  it("passes arguments and reports a command error with QEMU's class and text", async () => {
    const { fake, monitor } = await setup();
    fake.handler = () => ({ error: { class: "DeviceNotFound", desc: "Device 'nope' not found" } });
    const err = await monitor.execute("device_del", { id: "nope" }, 2000).catch((e: unknown) => e);
    expect(fake.received).toEqual([{ command: "device_del", args: { id: "nope" } }]);
    expect(err).toMatchObject({ code: "command", details: { command: "device_del", errorClass: "DeviceNotFound" } });
    expect((err as Error).message).toBe("QMP of web1: device_del failed: DeviceNotFound: Device 'nope' not found");
  });

  it("delivers events to subscribers of that event, and to catch-all subscribers", async () => {
    const { fake, monitor } = await setup();
    const stops: QmpEvent[] = [];
    const all: string[] = [];
    monitor.subscribe((e) => stops.push(e), ["STOP"]);
    const unsubscribe = monitor.subscribe((e) => all.push(e.event));
    fake.emit("STOP");
    fake.emit("RESUME");
    fake.emit("BLOCK_JOB_COMPLETED", { device: "drive-root", len: 10, offset: 10 });
    await waitUntil(() => all.length === 3);
    expect(all).toEqual(["STOP", "RESUME", "BLOCK_JOB_COMPLETED"]);
    expect(stops).toHaveLength(1);
    expect(stops[0]).toMatchObject({ event: "STOP", timestampUs: 1764496000123456 });
    unsubscribe();
    fake.emit("SHUTDOWN", { guest: true, reason: "guest-shutdown" });
    fake.emit("STOP");
    await waitUntil(() => stops.length === 2);
    expect(all).toHaveLength(3);
  });

  it("times out one command after its own timeout, leaves others alone, and ignores the late reply", async () => {
    const timers = new ManualTimers();
    const { fake, monitor } = await setup(undefined, timers);
    fake.handler = (command) => (command === "query-block" ? "ignore" : { return: {} });
    const hung = monitor.execute("query-block", undefined, 2000).catch((e: unknown) => e);
    await waitUntil(() => fake.received.length === 1);
    expect(timers.armed).toEqual([2000]);
    timers.fireAll();
    const err = await hung;
    expect(err).toMatchObject({ code: "timeout", details: { command: "query-block" } });
    expect((err as Error).message).toBe("QMP of web1: query-block: no reply within 2000 ms");
    // QEMU answers after all: the reply has no waiter and is dropped; the connection keeps working.
    fake.sendRaw('{"return":{"late":true},"id":"c1"}\n');
    await expect(monitor.execute("cont", undefined, 5000)).resolves.toEqual({});
    expect(timers.armed).toEqual([]);
  });

  it("fails every pending command, naming it, when the socket closes mid-command", async () => {
    const { fake, monitor } = await setup();
    const closes: string[] = [];
    monitor.onClose((e) => closes.push(e.code));
    fake.handler = (command) => (command === "system_powerdown" ? "close" : "ignore");
    const first = monitor.execute("query-status", undefined, 60_000).catch((e: unknown) => e);
    const second = monitor.execute("system_powerdown", undefined, 60_000).catch((e: unknown) => e);
    const [e1, e2] = await Promise.all([first, second]);
    expect(e1).toMatchObject({ code: "closed", details: { command: "query-status" } });
    expect((e1 as Error).message).toMatch(/^QMP of web1: query-status was pending when the QMP connection closed/);
    expect(e2).toMatchObject({ code: "closed", details: { command: "system_powerdown" } });
    expect(monitor.closed).toBe(true);
    expect(closes).toEqual(["closed"]);
    await expect(monitor.execute("cont", undefined, 1000)).rejects.toMatchObject({ code: "closed", details: { command: "cont" } });
  });

  it("treats a garbage line as a protocol error: the connection closes and pending commands fail", async () => {
    const { fake, monitor } = await setup();
    fake.handler = () => ({ raw: "this is not QMP\n" });
    const err = await monitor.execute("query-status", undefined, 60_000).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "closed", details: { command: "query-status" } });
    expect((err as Error).message).toContain('not JSON: "this is not QMP"');
    const closedWith = await new Promise<{ code: string }>((resolve) => monitor.onClose(resolve));
    expect(closedWith.code).toBe("protocol");
  });

  it("refuses more than the bounded number of pending commands", async () => {
    const { fake, monitor } = await setup();
    fake.handler = () => "ignore";
    const pending = Array.from({ length: qmpPendingCommandsMax }, () => monitor.execute("query-status", undefined, 60_000).catch(() => undefined));
    await expect(monitor.execute("stop", undefined, 1000)).rejects.toMatchObject({ code: "busy", details: { command: "stop" } });
    monitor.close();
    await Promise.all(pending);
  });
});
