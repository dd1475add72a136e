// FrameWriter: order kept, small buffers joined, large ones handed to the stream as they are,
// one stream write at a time.
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { FrameWriter } from "./frame-writer.ts";

/** A stream that records each write and completes it only when told to. */
function recorder(): { stream: Writable; writes: Buffer[]; complete(): void; waiting(): number } {
  const writes: Buffer[] = [];
  const callbacks: ((err?: Error | null) => void)[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      writes.push(chunk);
      callbacks.push(cb);
    },
  });
  return { stream, writes, complete: () => callbacks.shift()?.(), waiting: () => callbacks.length };
}

/** Lets the stream's write callbacks (deferred by Writable to the next tick) run. */
const ticks = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("FrameWriter", () => {
  it("joins small buffers, writes large ones untouched and alone, in order, one write at a time", async () => {
    const r = recorder();
    const deferred: (() => void)[] = [];
    const w = new FrameWriter(r.stream, (fn) => deferred.push(fn), 1024, 4096);
    const h1 = Buffer.from("h1");
    const p1 = Buffer.alloc(100, 1);
    const h2 = Buffer.from("h2");
    const big = Buffer.alloc(2048, 2);
    const h3 = Buffer.from("h3");
    for (const b of [h1, p1, h2, big, h3]) w.push(b);
    expect(r.writes).toHaveLength(0); // nothing before the deferred turn
    expect(deferred).toHaveLength(1);
    deferred.shift()!();
    expect(r.writes).toHaveLength(1);
    expect(r.writes[0]!.equals(Buffer.concat([h1, p1, h2]))).toBe(true);
    w.push(Buffer.from("h4"));
    expect(deferred).toHaveLength(0); // a write is under way: no second one scheduled
    r.complete();
    await ticks();
    expect(r.writes).toHaveLength(2);
    expect(r.writes[1]).toBe(big); // the very buffer: no copy
    r.complete();
    await ticks();
    expect(r.writes[2]!.toString()).toBe("h3h4");
    r.complete();
    await ticks();
    expect(r.waiting()).toBe(0);
    expect(w.queuedBuffers).toBe(0);
  });

  it("bounds a joined write and starts a new burst after going idle", async () => {
    const r = recorder();
    const deferred: (() => void)[] = [];
    const w = new FrameWriter(r.stream, (fn) => deferred.push(fn), 1024, 250);
    for (let i = 0; i < 5; i++) w.push(Buffer.alloc(100, i));
    w.flushNow();
    expect(r.writes.map((b) => b.length)).toEqual([200]);
    r.complete();
    await ticks();
    r.complete();
    await ticks();
    r.complete();
    await ticks();
    expect(r.writes.map((b) => b.length)).toEqual([200, 200, 100]);
    expect(Buffer.concat(r.writes).equals(Buffer.concat([0, 1, 2, 3, 4].map((i) => Buffer.alloc(100, i))))).toBe(true);
    for (const fn of deferred.splice(0)) fn(); // the burst's deferred turn comes late: nothing left to write
    expect(r.writes).toHaveLength(3);
    w.push(Buffer.from("again"));
    expect(deferred).toHaveLength(1);
  });

  it("drops what is queued once the stream is destroyed", async () => {
    const r = recorder();
    const w = new FrameWriter(r.stream, (fn) => fn());
    w.push(Buffer.from("a"));
    w.push(Buffer.alloc(128 * 1024));
    expect(r.writes).toHaveLength(1);
    r.stream.destroy();
    r.complete();
    await ticks();
    w.flushNow();
    expect(r.writes).toHaveLength(1);
    expect(w.queuedBuffers).toBe(0);
  });
});
