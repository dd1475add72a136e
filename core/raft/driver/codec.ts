// Binary wire encoding of Raft messages for the node-to-node transport. Hand-written rather than
// JSON or protobuf-by-reflection because it sits on the hot path of every append: numbers are
// unsigned varints (terms, indexes and ids stay below 2^53), byte strings are length-prefixed,
// and a frame starts with a version byte so the format can evolve.
import { MessageType, type Entry, type Message, type Snapshot } from "../types.ts";

const WIRE_VERSION = 1;
const FLAG_REJECT = 1;
const FLAG_LOG_TERM_HINT = 2;
const FLAG_SNAPSHOT = 4;
const FLAG_CONTEXT = 8;

export class CodecError extends Error {
  readonly code = "codec";
  constructor(message: string) {
    super(message);
    this.name = "CodecError";
  }
}

/** Growable byte writer. */
export class Writer {
  private buf: Buffer;
  private pos = 0;

  constructor(initialBytes = 256) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(v: number): void {
    this.reserve(1);
    this.buf[this.pos++] = v;
  }

  /** Unsigned varint for 0 <= v < 2^53 (arithmetic, since bit operators truncate to 32 bits). */
  uvarint(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new CodecError(`cannot encode ${v} as an unsigned varint`);
    this.reserve(8);
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }

  bytes(b: Uint8Array): void {
    this.uvarint(b.length);
    this.reserve(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

/** Byte reader that fails loudly on truncated or malformed input. */
export class Reader {
  private pos = 0;
  constructor(private readonly buf: Uint8Array) {}

  u8(): number {
    if (this.pos >= this.buf.length) throw new CodecError("truncated frame");
    return this.buf[this.pos++]!;
  }

  uvarint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 0x80;
    }
    throw new CodecError("varint longer than 8 bytes");
  }

  bytes(): Uint8Array {
    const n = this.uvarint();
    if (this.pos + n > this.buf.length) throw new CodecError("truncated byte string");
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  done(): boolean {
    return this.pos === this.buf.length;
  }
}

function writeEntry(w: Writer, e: Entry): void {
  w.uvarint(e.term);
  w.uvarint(e.index);
  w.u8(e.type);
  w.bytes(e.data);
}

function readEntry(r: Reader): Entry {
  const term = r.uvarint();
  const index = r.uvarint();
  const type = r.u8();
  const data = r.bytes();
  return { term, index, type, data };
}

function writeSnapshot(w: Writer, s: Snapshot): void {
  w.uvarint(s.metadata.index);
  w.uvarint(s.metadata.term);
  w.uvarint(s.metadata.confState.voters.length);
  for (const v of s.metadata.confState.voters) w.uvarint(v);
  w.uvarint(s.metadata.confState.learners.length);
  for (const l of s.metadata.confState.learners) w.uvarint(l);
  w.bytes(s.data);
}

function readSnapshot(r: Reader): Snapshot {
  const index = r.uvarint();
  const term = r.uvarint();
  const voters: number[] = [];
  for (let n = r.uvarint(); n > 0; n--) voters.push(r.uvarint());
  const learners: number[] = [];
  for (let n = r.uvarint(); n > 0; n--) learners.push(r.uvarint());
  return { metadata: { index, term, confState: { voters, learners } }, data: r.bytes() };
}

export function writeMessage(w: Writer, m: Message): void {
  let flags = 0;
  if (m.reject) flags |= FLAG_REJECT;
  if (m.logTermHint !== undefined) flags |= FLAG_LOG_TERM_HINT;
  if (m.snapshot) flags |= FLAG_SNAPSHOT;
  if (m.context) flags |= FLAG_CONTEXT;
  w.u8(m.type);
  w.u8(flags);
  w.uvarint(m.from);
  w.uvarint(m.to);
  w.uvarint(m.term);
  w.uvarint(m.logTerm);
  w.uvarint(m.index);
  w.uvarint(m.commit);
  w.uvarint(m.rejectHint);
  if (m.logTermHint !== undefined) w.uvarint(m.logTermHint);
  w.uvarint(m.entries.length);
  for (const e of m.entries) writeEntry(w, e);
  if (m.snapshot) writeSnapshot(w, m.snapshot);
  if (m.context) w.bytes(m.context);
}

export function readMessage(r: Reader): Message {
  const type = r.u8();
  if (!(type in MessageType)) throw new CodecError(`unknown message type ${type}`);
  const flags = r.u8();
  const m: Message = {
    type,
    from: r.uvarint(),
    to: r.uvarint(),
    term: r.uvarint(),
    logTerm: r.uvarint(),
    index: r.uvarint(),
    commit: r.uvarint(),
    reject: (flags & FLAG_REJECT) !== 0,
    rejectHint: r.uvarint(),
    entries: [],
  };
  if (flags & FLAG_LOG_TERM_HINT) m.logTermHint = r.uvarint();
  for (let n = r.uvarint(); n > 0; n--) m.entries.push(readEntry(r));
  if (flags & FLAG_SNAPSHOT) m.snapshot = readSnapshot(r);
  if (flags & FLAG_CONTEXT) m.context = r.bytes();
  return m;
}

/** A batch of messages to one peer, as one frame. */
export function encodeBatch(messages: readonly Message[]): Buffer {
  const w = new Writer(512);
  w.u8(WIRE_VERSION);
  w.uvarint(messages.length);
  for (const m of messages) writeMessage(w, m);
  return w.finish();
}

export function decodeBatch(frame: Uint8Array): Message[] {
  const r = new Reader(frame);
  const version = r.u8();
  if (version !== WIRE_VERSION) throw new CodecError(`unsupported wire version ${version} (this node speaks ${WIRE_VERSION})`);
  const out: Message[] = [];
  for (let n = r.uvarint(); n > 0; n--) out.push(readMessage(r));
  if (!r.done()) throw new CodecError("trailing bytes after the last message");
  return out;
}
