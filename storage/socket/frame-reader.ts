// Splits a received byte stream into frames (a fixed-size header, then a payload whose length
// the header gives), copying as it goes: push() takes bytes that are only valid during the call
// (a socket's static read buffer, static-read.ts), the header is gathered in a scratch buffer of
// its own and the payload into a buffer leased for it. While a payload is incomplete, the socket
// can read the rest of it in place (directTarget/directFilled): no copy at all. Complete frames
// queue until shift() takes them; the taker owns the payload's lease and releases it when done.
// A header that fails to decode throws out of push(); the reader then refuses further input.
import type { Lease } from "../memory/buffer-pool.ts";

export interface ReadFrame<H> {
  header: H;
  /** The payload (empty when there is none); valid until lease.release(). */
  payload: Buffer;
  /** null for an empty payload. */
  lease: Lease | null;
}

const emptyPayload = Buffer.alloc(0);

export class FrameReader<H> {
  private readonly scratch: Buffer;
  private headerFilled = 0;
  private current: { header: H; lease: Lease; filled: number } | null = null;
  private readonly frames: ReadFrame<H>[] = [];
  private head = 0;
  private broken = false;

  constructor(
    private readonly headerBytes: number,
    /** Reads a header from the scratch buffer (which is reused: copy, do not keep views); throws to refuse it. */
    private readonly decodeHeader: (b: Buffer) => H,
    /** How many payload bytes follow this header. */
    private readonly payloadBytesOf: (h: H) => number,
    /** Memory for a payload of `bytes` after header h. */
    private readonly lease: (h: H, bytes: number) => Lease,
  ) {
    this.scratch = Buffer.allocUnsafeSlow(headerBytes);
  }

  /** Complete frames not yet taken. */
  get queued(): number {
    return this.frames.length - this.head;
  }

  /** The unfilled rest of the payload being received, for the next read to land in; else null. */
  directTarget(): Buffer | null {
    const cur = this.current;
    return cur === null || this.broken ? null : cur.lease.buffer.subarray(cur.filled);
  }

  /** n bytes were read into the buffer directTarget() returned. */
  directFilled(n: number): void {
    const cur = this.current;
    if (cur === null || n > cur.lease.buffer.length - cur.filled) throw new RangeError(`frame reader: ${n} bytes read past the payload`);
    cur.filled += n;
    if (cur.filled === cur.lease.buffer.length) this.complete(cur);
  }

  /** Copies bytes in; throws what decodeHeader throws. */
  push(bytes: Buffer): void {
    if (this.broken) return;
    let at = 0;
    while (at < bytes.length) {
      const cur = this.current;
      if (cur !== null) {
        const n = Math.min(bytes.length - at, cur.lease.buffer.length - cur.filled);
        bytes.copy(cur.lease.buffer, cur.filled, at, at + n);
        cur.filled += n;
        at += n;
        if (cur.filled === cur.lease.buffer.length) this.complete(cur);
        continue;
      }
      const n = Math.min(bytes.length - at, this.headerBytes - this.headerFilled);
      bytes.copy(this.scratch, this.headerFilled, at, at + n);
      this.headerFilled += n;
      at += n;
      if (this.headerFilled < this.headerBytes) break;
      this.headerFilled = 0;
      this.startFrame();
    }
  }

  /** The oldest complete frame, or null. */
  shift(): ReadFrame<H> | null {
    if (this.head === this.frames.length) return null;
    const f = this.frames[this.head]!;
    this.frames[this.head++] = undefined as unknown as ReadFrame<H>;
    if (this.head === this.frames.length) {
      this.frames.length = 0;
      this.head = 0;
    }
    return f;
  }

  /** Releases every payload held (queued frames and the one being received); for a closed stream. */
  discard(): void {
    this.broken = true;
    for (let f = this.shift(); f !== null; f = this.shift()) f.lease?.release();
    this.current?.lease.release();
    this.current = null;
  }

  private complete(cur: { header: H; lease: Lease }): void {
    this.current = null;
    this.frames.push({ header: cur.header, payload: cur.lease.buffer, lease: cur.lease });
  }

  private startFrame(): void {
    let header: H;
    let bytes: number;
    try {
      header = this.decodeHeader(this.scratch);
      bytes = this.payloadBytesOf(header);
    } catch (err) {
      this.broken = true;
      throw err;
    }
    if (bytes === 0) this.frames.push({ header, payload: emptyPayload, lease: null });
    else this.current = { header, lease: this.lease(header, bytes), filled: 0 };
  }
}
