import { EventEmitter } from "node:events";
import type { WebSocket } from "ws";
import { describe, expect, it } from "vitest";
import { bridge, closeCodes, parseControl, type ByteBackend } from "./bridge.ts";

/** A WebSocket whose sends complete only when the test says so (a slow browser). */
class SlowSocket extends EventEmitter {
  readonly OPEN = 1;
  readonly CONNECTING = 0;
  readyState = 1;
  pending: Array<() => void> = [];
  paused = false;
  closedWith?: { code: number; reason: string };
  send(_d: Buffer, _o: unknown, cb: () => void) {
    this.pending.push(cb);
  }
  pause() {
    this.paused = true;
  }
  resume() {
    this.paused = false;
  }
  close(code: number, reason: string) {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }
}

class FakeBackend extends EventEmitter implements ByteBackend {
  paused = false;
  writable = true;
  written: Buffer[] = [];
  closed = false;
  resize?: (cols: number, rows: number) => void;
  write(d: Buffer) {
    this.written.push(d);
    return this.writable;
  }
  onData(fn: (d: Buffer) => void) { this.on("data", fn); }
  onDrain(fn: () => void) { this.on("drain", fn); }
  onClose(fn: (reason?: string) => void) { this.on("close", fn); }
  pause() { this.paused = true; }
  resume() { this.paused = false; }
  close() { this.closed = true; }
}

const limits = { maxBufferedBytes: 1000, idleTimeoutMs: 60_000 };

describe("bridge", () => {
  it("pauses the source past the bound and resumes below half of it", () => {
    const ws = new SlowSocket();
    const be = new FakeBackend();
    bridge(ws as unknown as WebSocket, be, limits);
    be.emit("data", Buffer.alloc(600));
    expect(be.paused).toBe(false);
    be.emit("data", Buffer.alloc(600));
    expect(be.paused).toBe(true);
    ws.pending.shift()!();
    expect(be.paused).toBe(true);
    ws.pending.shift()!();
    expect(be.paused).toBe(false);
    ws.emit("close");
  });

  it("pauses the client while the backend is full, until it drains", () => {
    const ws = new SlowSocket();
    const be = new FakeBackend();
    bridge(ws as unknown as WebSocket, be, limits);
    be.writable = false;
    ws.emit("message", Buffer.from("abc"), true);
    expect(ws.paused).toBe(true);
    be.emit("drain");
    expect(ws.paused).toBe(false);
    expect(Buffer.concat(be.written).toString()).toBe("abc");
    ws.emit("close");
    expect(be.closed).toBe(true);
  });

  it("passes resize to the backend, closes 1003 on other text, 1011 when the backend fails", () => {
    const ws = new SlowSocket();
    const be = new FakeBackend();
    const sizes: number[][] = [];
    be.resize = (c: number, r: number) => sizes.push([c, r]);
    bridge(ws as unknown as WebSocket, be, limits);
    ws.emit("message", Buffer.from('{"type":"resize","cols":100,"rows":30}'), false);
    expect(sizes).toEqual([[100, 30]]);
    ws.emit("message", Buffer.from("hello"), false);
    expect(ws.closedWith?.code).toBe(closeCodes.unsupportedData);
    const ws2 = new SlowSocket();
    const be2 = new FakeBackend();
    bridge(ws2 as unknown as WebSocket, be2, limits);
    be2.emit("close", "console socket /x: ECONNREFUSED");
    expect(ws2.closedWith).toEqual({ code: closeCodes.backendFailed, reason: "console socket /x: ECONNREFUSED" });
  });

  it("accepts only well-formed resize messages", () => {
    expect(parseControl('{"type":"resize","cols":80,"rows":24}')).toEqual({ type: "resize", cols: 80, rows: 24 });
    for (const t of ['{"type":"resize","cols":0,"rows":24}', '{"type":"resize","cols":1.5,"rows":2}', "null", "[", '{"type":"x"}']) expect(parseControl(t)).toBeUndefined();
  });
});
