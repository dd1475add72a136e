// The replication channel's wire format: fixed-size binary headers (big-endian) followed by an
// optional payload, with pure encoders and a streaming decoder. A channel is bound to one image
// by its OPEN request; every request carries the writer epoch and a u64 handle, and replies come
// back in completion order, matched by handle. Payload sizes are bounded so that a broken or
// hostile peer cannot make the other side buffer without limit.
import { ByteQueue } from "../nbd/byte-queue.ts";

export const alpnProtocol = "trivet-repl/1";
export const requestMagic = 0x5452_5051; // "TRPQ"
export const replyMagic = 0x5452_5052; // "TRPR"
export const requestHeaderBytes = 48;
export const replyHeaderBytes = 32;

export const op = {
  open: 1,
  write: 2,
  read: 3,
  flush: 4,
  trim: 5,
  writeZeroes: 6,
  checksums: 7,
  grow: 8,
  close: 9,
} as const;
export type OpCode = (typeof op)[keyof typeof op];

export const reqFlag = { fua: 1 << 0, noHole: 1 << 1 } as const;

/** Reply status codes; the names are the `code` of the error a client raises. */
export const status = {
  ok: 0,
  stale_epoch: 1,
  no_space: 2,
  io: 3,
  invalid_argument: 4,
  out_of_range: 5,
  not_open: 6,
} as const;
export type StatusName = Exclude<keyof typeof status, "ok">;
const statusNames = new Map<number, StatusName>(
  (Object.entries(status) as [keyof typeof status, number][]).filter(([k]) => k !== "ok").map(([k, v]) => [v, k as StatusName]),
);

export function statusName(code: number): StatusName {
  return statusNames.get(code) ?? "io";
}

export const protocolLimits = {
  /** Largest WRITE payload or READ length: bigger guest requests are split by the coordinator. */
  dataBytesMax: 8 * 1024 * 1024,
  imageIdBytesMax: 128,
  errorMessageBytesMax: 1024,
  /** Digests one CHECKSUMS request may ask for (32 bytes each). */
  checksumChunksMax: 1024,
  checksumChunkBytesMin: 4096,
  checksumChunkBytesMax: 16 * 1024 * 1024,
  digestBytes: 32,
} as const;

/** Anything larger than these in a frame header ends the channel as a protocol error. */
export const requestPayloadBytesMax = Math.max(protocolLimits.dataBytesMax, protocolLimits.imageIdBytesMax);
export const replyPayloadBytesMax = Math.max(
  protocolLimits.dataBytesMax,
  protocolLimits.checksumChunksMax * protocolLimits.digestBytes,
  protocolLimits.errorMessageBytesMax,
);

export interface RequestHeader {
  op: number;
  flags: number;
  /** Chosen by the client, unique among its requests in flight (a safe integer). */
  handle: number;
  epoch: number;
  /** Byte offset; for OPEN and GROW the image size in bytes. */
  offset: number;
  /** Byte length of READ, TRIM, WRITE_ZEROES, CHECKSUMS. */
  length: number;
  /** CHECKSUMS only: bytes per digested chunk. */
  chunkBytes: number;
  payloadBytes: number;
}

export interface Request extends RequestHeader, Payload {
  /** WRITE data, or the UTF-8 image id of OPEN; empty otherwise. */
  payload: Buffer;
}

export interface ReplyHeader {
  status: number;
  handle: number;
  /** OPEN: the image size; stale_epoch: the highest epoch the brick has seen; else 0. */
  value: number;
  payloadBytes: number;
}

export interface Reply extends ReplyHeader, Payload {
  /** READ data, CHECKSUMS digests, or a UTF-8 error message. */
  payload: Buffer;
}

export class ProtocolError extends Error {
  readonly code = "protocol";
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

/** The header of a request; the payload (if any) is written after it unchanged. */
export function encodeRequestHeader(h: Omit<RequestHeader, "payloadBytes">, payloadBytes: number): Buffer {
  const b = Buffer.allocUnsafe(requestHeaderBytes);
  b.writeUInt32BE(requestMagic, 0);
  b.writeUInt8(h.op, 4);
  b.writeUInt8(h.flags, 5);
  b.writeUInt16BE(0, 6);
  b.writeUInt32BE(payloadBytes, 8);
  b.writeUInt32BE(h.chunkBytes, 12);
  writeU64(b, h.handle, 16);
  writeU64(b, h.epoch, 24);
  writeU64(b, h.offset, 32);
  writeU64(b, h.length, 40);
  return b;
}

export function decodeRequestHeader(b: Buffer): RequestHeader {
  const magic = b.readUInt32BE(0);
  if (magic !== requestMagic) throw new ProtocolError(`bad request magic 0x${magic.toString(16)}`);
  const h: RequestHeader = {
    op: b.readUInt8(4),
    flags: b.readUInt8(5),
    payloadBytes: b.readUInt32BE(8),
    chunkBytes: b.readUInt32BE(12),
    handle: readU64(b, 16, "handle"),
    epoch: readU64(b, 24, "epoch"),
    offset: readU64(b, 32, "offset"),
    length: readU64(b, 40, "length"),
  };
  if (h.payloadBytes > requestPayloadBytesMax) {
    throw new ProtocolError(`request payload of ${h.payloadBytes} bytes exceeds ${requestPayloadBytesMax}`);
  }
  return h;
}

export function encodeReplyHeader(h: Omit<ReplyHeader, "payloadBytes">, payloadBytes: number): Buffer {
  const b = Buffer.allocUnsafe(replyHeaderBytes);
  b.writeUInt32BE(replyMagic, 0);
  b.writeUInt8(h.status, 4);
  b.fill(0, 5, 8);
  b.writeUInt32BE(payloadBytes, 8);
  b.writeUInt32BE(0, 12);
  writeU64(b, h.handle, 16);
  writeU64(b, h.value, 24);
  return b;
}

export function decodeReplyHeader(b: Buffer): ReplyHeader {
  const magic = b.readUInt32BE(0);
  if (magic !== replyMagic) throw new ProtocolError(`bad reply magic 0x${magic.toString(16)}`);
  const h: ReplyHeader = {
    status: b.readUInt8(4),
    payloadBytes: b.readUInt32BE(8),
    handle: readU64(b, 16, "handle"),
    value: readU64(b, 24, "value"),
  };
  if (h.payloadBytes > replyPayloadBytesMax) throw new ProtocolError(`reply payload of ${h.payloadBytes} bytes exceeds ${replyPayloadBytesMax}`);
  return h;
}

const two32 = 0x1_0000_0000;
/** Above this the high word would make the value unsafe as a JS number (2^53). */
const highWordMax = 0x1f_ffff;

/** u64 fields hold safe integers (< 2^53): written as two u32 words to avoid BigInt per field. */
function writeU64(b: Buffer, v: number, at: number): void {
  b.writeUInt32BE(Math.floor(v / two32), at);
  b.writeUInt32BE(v >>> 0, at + 4);
}

function readU64(b: Buffer, at: number, field: string): number {
  const hi = b.readUInt32BE(at);
  if (hi > highWordMax) throw new ProtocolError(`${field} is beyond 2^53`);
  return hi * two32 + b.readUInt32BE(at + 4);
}

/** An error reply's payload: the message, cut to the bound (on a character boundary). */
export function errorPayload(message: string): Buffer {
  const b = Buffer.from(message, "utf8");
  if (b.length <= protocolLimits.errorMessageBytesMax) return b;
  return Buffer.from(b.subarray(0, protocolLimits.errorMessageBytesMax).toString("utf8").replace(/\uFFFD$/, ""), "utf8");
}

/**
 * Splits a byte stream of owned chunks ('data' events) into frames: push() received chunks, then
 * take frames with next() until it returns null. Payloads that lie within one received chunk are
 * views, not copies. (The brick server reads its requests with socket/frame-reader.ts instead.)
 */
export class FrameDecoder<H extends { payloadBytes: number }> {
  private readonly queue = new ByteQueue();
  private header: H | null = null;

  constructor(
    private readonly headerBytes: number,
    private readonly decodeHeader: (b: Buffer) => H,
  ) {}

  push(chunk: Buffer): void {
    this.queue.push(chunk);
  }

  get bufferedBytes(): number {
    return this.queue.length;
  }

  /** The next complete frame, or null when more bytes are needed. Throws ProtocolError. */
  next(): (H & Payload) | null {
    if (this.header === null) {
      if (this.queue.length < this.headerBytes) return null;
      this.header = this.decodeHeader(this.queue.take(this.headerBytes));
    }
    const h = this.header;
    if (this.queue.length < h.payloadBytes) return null;
    this.header = null;
    return Object.assign(h, { payload: h.payloadBytes === 0 ? emptyBuffer : this.queue.take(h.payloadBytes) });
  }
}

export interface Payload {
  payload: Buffer;
}

const emptyBuffer = Buffer.alloc(0);

export function requestDecoder(): FrameDecoder<RequestHeader> {
  return new FrameDecoder(requestHeaderBytes, decodeRequestHeader);
}

export function replyDecoder(): FrameDecoder<ReplyHeader> {
  return new FrameDecoder(replyHeaderBytes, decodeReplyHeader);
}

/** Checks a CHECKSUMS request's shape; returns the reason it is invalid, or null. */
export function checkChecksumsRequest(length: number, chunkBytes: number): string | null {
  const { checksumChunkBytesMin: min, checksumChunkBytesMax: max, checksumChunksMax } = protocolLimits;
  if (chunkBytes < min || chunkBytes > max || (chunkBytes & (chunkBytes - 1)) !== 0) {
    return `chunk size ${chunkBytes} must be a power of two from ${min} to ${max} bytes`;
  }
  if (Math.ceil(length / chunkBytes) > checksumChunksMax) return `${length} bytes in ${chunkBytes}-byte chunks exceeds ${checksumChunksMax} chunks`;
  return null;
}
