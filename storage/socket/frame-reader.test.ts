// FrameReader over a tiny test format (u32 magic, u32 payload length, payload): frames must come
// out whole and in order however the stream is cut, whether bytes are pushed or read in place,
// and every payload lease must be released exactly once by whoever ends up holding it.
import { describe, expect, it } from "vitest";
import type { Lease } from "../memory/buffer-pool.ts";
import { FrameReader, type ReadFrame } from "./frame-reader.ts";

const magic = 0x54525654;
const headerBytes = 8;

interface Header {
  payloadBytes: number;
}

function decodeHeader(b: Buffer): Header {
  const m = b.readUInt32BE(0);
  if (m !== magic) throw new Error(`bad magic ${m.toString(16)}`);
  return { payloadBytes: b.readUInt32BE(4) };
}

/** Seeded xorshift32, so a failing cut is reproducible from its seed. */
function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

function encode(payloads: Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const p of payloads) {
    const h = Buffer.alloc(headerBytes);
    h.writeUInt32BE(magic, 0);
    h.writeUInt32BE(p.length, 4);
    parts.push(h, p);
  }
  return Buffer.concat(parts);
}

function payloadsOf(sizes: number[], seed: number): Buffer[] {
  const next = prng(seed);
  return sizes.map((n) => Buffer.from(Array.from({ length: n }, () => next() & 0xff)));
}

/** A lease function that counts what it hands out and what comes back. */
function countingLeases(): { lease: (h: Header, bytes: number) => Lease; leased: number; released: number; doubleReleases: number } {
  const c = {
    leased: 0,
    released: 0,
    doubleReleases: 0,
    lease: (h: Header, bytes: number): Lease => {
      expect(bytes).toBe(h.payloadBytes);
      c.leased++;
      let done = false;
      return {
        buffer: Buffer.alloc(bytes, 0xee),
        release: () => {
          if (done) c.doubleReleases++;
          else c.released++;
          done = true;
        },
      };
    },
  };
  return c;
}

function newReader(c = countingLeases()): { reader: FrameReader<Header>; c: ReturnType<typeof countingLeases> } {
  return { reader: new FrameReader(headerBytes, decodeHeader, (h) => h.payloadBytes, (h, n) => c.lease(h, n)), c };
}

function drain(reader: FrameReader<Header>): ReadFrame<Header>[] {
  const out: ReadFrame<Header>[] = [];
  for (let f = reader.shift(); f !== null; f = reader.shift()) out.push(f);
  return out;
}

function expectFrames(frames: ReadFrame<Header>[], payloads: Buffer[], context: string): void {
  expect(frames.length, context).toBe(payloads.length);
  frames.forEach((f, i) => {
    expect(f.header.payloadBytes, `${context}: frame ${i}`).toBe(payloads[i]!.length);
    expect(f.payload.equals(payloads[i]!), `${context}: frame ${i} payload`).toBe(true);
    expect(f.lease === null, `${context}: frame ${i} lease`).toBe(payloads[i]!.length === 0);
  });
}

const sizes = [0, 1, 7, 8, 9, 0, 0, 100, 3, 4096, 0, 17];

describe("FrameReader", () => {
  it("reassembles frames pushed one byte at a time", () => {
    const payloads = payloadsOf(sizes, 1);
    const stream = encode(payloads);
    const { reader, c } = newReader();
    for (let i = 0; i < stream.length; i++) reader.push(stream.subarray(i, i + 1));
    expect(reader.queued).toBe(payloads.length);
    expectFrames(drain(reader), payloads, "byte at a time");
    expect(reader.queued).toBe(0);
    expect(c.leased).toBe(sizes.filter((n) => n > 0).length);
  });

  it("reassembles frames cut in two at every possible point", () => {
    const payloads = payloadsOf([3, 0, 10, 1, 0, 9], 2);
    const stream = encode(payloads);
    for (let cut = 0; cut <= stream.length; cut++) {
      const { reader } = newReader();
      reader.push(stream.subarray(0, cut));
      reader.push(stream.subarray(cut));
      expectFrames(drain(reader), payloads, `cut at ${cut}`);
    }
  });

  it("reassembles frames from random chunk sizes (seeded)", () => {
    for (let seed = 1; seed <= 50; seed++) {
      const next = prng(seed * 7919);
      const payloads = payloadsOf(
        Array.from({ length: 20 }, () => (next() % 4 === 0 ? 0 : next() % 300)),
        seed,
      );
      const stream = encode(payloads);
      const { reader } = newReader();
      const got: ReadFrame<Header>[] = [];
      for (let at = 0; at < stream.length; ) {
        const n = 1 + (next() % 37);
        // The chunk is only valid during push: scribble over it after, as a socket's static buffer would be.
        const chunk = Buffer.from(stream.subarray(at, at + n));
        reader.push(chunk);
        chunk.fill(0xaa);
        at += n;
        // Take frames as they complete, sometimes, so queued and taken frames interleave.
        if (next() % 3 === 0) got.push(...drain(reader));
      }
      got.push(...drain(reader));
      expectFrames(got, payloads, `seed ${seed}`);
    }
  });

  it("queues zero-length payloads without leasing memory", () => {
    const { reader, c } = newReader();
    reader.push(encode([Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0)]));
    expect(reader.queued).toBe(3);
    expect(c.leased).toBe(0);
    expect(reader.directTarget()).toBeNull();
    for (const f of drain(reader)) {
      expect(f.payload.length).toBe(0);
      expect(f.lease).toBeNull();
    }
  });

  it("lets an open payload be filled in place, mixed with pushes", () => {
    const payloads = payloadsOf([1000, 5, 0, 300], 3);
    const stream = encode(payloads);
    const { reader, c } = newReader();
    expect(reader.directTarget()).toBeNull();
    reader.push(stream.subarray(0, 5));
    expect(reader.directTarget()).toBeNull(); // mid-header: nothing to read into yet
    reader.push(stream.subarray(5, 8 + 100));
    let target = reader.directTarget();
    expect(target?.length).toBe(900);
    stream.copy(target!, 0, 108, 108 + 400);
    reader.directFilled(400);
    target = reader.directTarget();
    expect(target?.length).toBe(500);
    stream.copy(target!, 0, 508, 1008);
    reader.directFilled(500);
    expect(reader.queued).toBe(1);
    expect(reader.directTarget()).toBeNull();
    // The second header and half its payload by push; the rest in place; then the last two frames by push.
    reader.push(stream.subarray(1008, 1008 + 8 + 2));
    target = reader.directTarget();
    expect(target?.length).toBe(3);
    stream.copy(target!, 0, 1018, 1021);
    reader.directFilled(3);
    reader.push(stream.subarray(1021));
    expectFrames(drain(reader), payloads, "mixed");
    expect(c.leased).toBe(3);
  });

  it("reads in place into the leased memory itself", () => {
    const { reader } = newReader();
    reader.push(encode([Buffer.alloc(64)]).subarray(0, headerBytes));
    const first = reader.directTarget()!;
    first.fill(1, 0, 10);
    reader.directFilled(10);
    const rest = reader.directTarget()!;
    expect(rest.buffer).toBe(first.buffer);
    expect(rest.byteOffset).toBe(first.byteOffset + 10);
    rest.fill(2);
    reader.directFilled(54);
    const f = reader.shift()!;
    expect(f.payload.buffer).toBe(first.buffer);
    expect([...f.payload.subarray(8, 12)]).toEqual([1, 1, 2, 2]);
  });

  it("refuses directFilled past the payload, or with no payload open, with a RangeError", () => {
    const { reader } = newReader();
    expect(() => reader.directFilled(1)).toThrow(RangeError);
    reader.push(encode([Buffer.alloc(10)]).subarray(0, headerBytes));
    reader.directFilled(4);
    expect(() => reader.directFilled(7)).toThrow(RangeError);
    expect(reader.directTarget()?.length).toBe(6); // the refused call changed nothing
    reader.directFilled(6);
    expect(reader.queued).toBe(1);
    expect(() => reader.directFilled(1)).toThrow(RangeError);
  });

  it("throws a decode error once, keeps the frames before it and ignores later input", () => {
    const good = payloadsOf([4, 0], 4);
    const bad = Buffer.alloc(headerBytes + 4);
    bad.writeUInt32BE(0xdeadbeef, 0);
    bad.writeUInt32BE(4, 4);
    const { reader, c } = newReader();
    expect(() => reader.push(Buffer.concat([encode(good), bad, encode(good)]))).toThrow(/bad magic deadbeef/);
    expect(reader.queued).toBe(2);
    const leasedAtError = c.leased;
    reader.push(encode(good));
    reader.push(encode(good));
    expect(reader.queued).toBe(2);
    expect(c.leased).toBe(leasedAtError);
    expect(reader.directTarget()).toBeNull();
    expectFrames(drain(reader), good, "before the error");
  });

  it("treats a throwing payloadBytesOf like a decode error", () => {
    const c = countingLeases();
    const reader = new FrameReader<Header>(
      headerBytes,
      decodeHeader,
      (h) => {
        if (h.payloadBytes > 100) throw new RangeError("payload too large");
        return h.payloadBytes;
      },
      (h, n) => c.lease(h, n),
    );
    expect(() => reader.push(encode([Buffer.alloc(101)]))).toThrow(/too large/);
    expect(() => reader.push(encode([Buffer.alloc(1)]))).not.toThrow();
    expect(reader.queued).toBe(0);
    expect(c.leased).toBe(0);
  });

  it("discard() releases queued frames and the partial payload, once each, and ends the stream", () => {
    const payloads = payloadsOf([10, 0, 20, 30], 5);
    const stream = encode(payloads);
    const { reader, c } = newReader();
    reader.push(stream.subarray(0, stream.length - 5)); // the last payload is 25 of 30 bytes in
    expect(reader.queued).toBe(3);
    const taken = reader.shift()!; // the taker owns this one
    expect(c.leased).toBe(3);
    reader.discard();
    expect(c.released).toBe(2);
    expect(reader.queued).toBe(0);
    expect(reader.shift()).toBeNull();
    expect(reader.directTarget()).toBeNull();
    reader.push(stream.subarray(stream.length - 5));
    reader.push(stream);
    expect(reader.queued).toBe(0);
    expect(c.leased).toBe(3);
    reader.discard();
    expect(c.released).toBe(2);
    taken.lease!.release();
    expect(c.released).toBe(3);
    expect(c.doubleReleases).toBe(0);
  });
});
