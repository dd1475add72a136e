// Tests of the shared event stream: listeners get parsed events, the stream opens with the
// first listener and closes with the last, and after an error it reopens with the last id and
// tells listeners that events may have been missed.
import { describe, expect, it } from "vitest";
import { createEventHub, parseEvent, reconnectDelayMs, watchPath, watchUrl, type ApiEvent, type StreamLike } from "./events.ts";

class FakeStream implements StreamLike {
  onopen: ((ev: Event) => unknown) | null = null;
  onmessage: ((ev: MessageEvent<string>) => unknown) | null = null;
  closed = false;
  private readonly errorFns: (() => void)[] = [];
  constructor(readonly url: string) {}
  addEventListener(_type: "error", fn: () => void): void { this.errorFns.push(fn); }
  close(): void { this.closed = true; }
  open(): void { this.onopen?.(new Event("open")); }
  send(data: string): void { this.onmessage?.({ data } as MessageEvent<string>); }
  fail(): void { for (const f of this.errorFns) f(); }
}

function harness() {
  const streams: FakeStream[] = [];
  const timers: { fn: () => void; ms: number; cleared: boolean }[] = [];
  const hub = createEventHub({
    open: (url) => { const s = new FakeStream(url); streams.push(s); return s; },
    setTimeout: (fn, ms) => { const t = { fn, ms, cleared: false }; timers.push(t); return t; },
    clearTimeout: (h) => { (h as { cleared: boolean }).cleared = true; },
  });
  return { hub, streams, timers };
}

const afterIdOf = (url: string) => (JSON.parse(new URLSearchParams(url.split("?")[1]).get("request")!) as { afterId: string }).afterId;

describe("event stream", () => {
  it("parses proto3 JSON events and ignores anything else", () => {
    expect(parseEvent('{"id":"7","timeMs":"1700000000000","kind":"vm.state","object":"vm/a","message":"VM a is running","fields":{"state":"running"}}'))
      .toEqual({ id: "7", kind: "vm.state", object: "vm/a", fields: { state: "running" }, timeMs: 1_700_000_000_000, message: "VM a is running" });
    expect(parseEvent('{"id":"8","kind":"cluster.leader"}')).toEqual({ id: "8", kind: "cluster.leader", object: "", fields: {}, timeMs: 0, message: "" });
    expect(parseEvent("not json")).toBeUndefined();
    expect(parseEvent('{"error":{"code":"internal"}}')).toBeUndefined();
    expect(watchUrl("0").startsWith(`${watchPath}?request=`)).toBe(true);
  });

  it("shares one stream among listeners and closes it with the last one", () => {
    const { hub, streams } = harness();
    const a: (ApiEvent | undefined)[] = [];
    const b: (ApiEvent | undefined)[] = [];
    const offA = hub.subscribe((e) => a.push(e));
    const offB = hub.subscribe((e) => b.push(e));
    expect(streams).toHaveLength(1);
    expect(afterIdOf(streams[0]!.url)).toBe("0");
    streams[0]!.open();
    streams[0]!.send('{"id":"3","kind":"vm.state","object":"vm/a"}');
    expect(a.map((e) => e?.object)).toEqual(["vm/a"]);
    expect(b).toHaveLength(1);
    offA();
    expect(streams[0]!.closed).toBe(false);
    offB();
    expect(streams[0]!.closed).toBe(true);
  });

  it("reopens after an error with the last event's id and signals a possible gap", () => {
    const { hub, streams, timers } = harness();
    const got: (ApiEvent | undefined)[] = [];
    const off = hub.subscribe((e) => got.push(e));
    streams[0]!.open();
    streams[0]!.send('{"id":"41","kind":"node.health","object":"node/n2"}');
    streams[0]!.fail();
    expect(streams[0]!.closed).toBe(true);
    expect(timers.map((t) => t.ms)).toEqual([reconnectDelayMs]);
    timers[0]!.fn();
    expect(streams).toHaveLength(2);
    expect(afterIdOf(streams[1]!.url)).toBe("41");
    streams[1]!.open();
    expect(got).toHaveLength(2);
    expect(got[1]).toBeUndefined();
    // Leaving while a retry is scheduled cancels it.
    streams[1]!.fail();
    off();
    expect(timers[1]!.cleared).toBe(true);
  });
});
