// The NBD wire protocol (fixed newstyle handshake, simple and structured replies): constants and
// pure encoders/decoders. No I/O here; server.ts and its helpers drive a socket with these.
// Numbers follow the NBD protocol document (NetworkBlockDevice/nbd doc/proto.md); all fields are
// big-endian.

export const nbdMagic = 0x4e42444d41474943n; // "NBDMAGIC"
export const ihaveoptMagic = 0x49484156454f5054n; // "IHAVEOPT"
export const optionReplyMagic = 0x3e889045565a9n;
export const requestMagic = 0x25609513;
export const simpleReplyMagic = 0x67446698;
export const structuredReplyMagic = 0x668e33ef;

// Handshake flags (server) and client flags.
export const handshakeFlag = { fixedNewstyle: 1 << 0, noZeroes: 1 << 1 } as const;
export const clientFlag = { fixedNewstyle: 1 << 0, noZeroes: 1 << 1 } as const;
export const clientFlagsKnown = clientFlag.fixedNewstyle | clientFlag.noZeroes;

export const opt = {
  exportName: 1,
  abort: 2,
  list: 3,
  peekExport: 4,
  startTls: 5,
  info: 6,
  go: 7,
  structuredReply: 8,
  listMetaContext: 9,
  setMetaContext: 10,
  extendedHeaders: 11,
} as const;

const repErrBit = 0x80000000;
export const rep = {
  ack: 1,
  server: 2,
  info: 3,
  errUnsup: repErrBit + 1,
  errPolicy: repErrBit + 2,
  errInvalid: repErrBit + 3,
  errPlatform: repErrBit + 4,
  errTlsReqd: repErrBit + 5,
  errUnknown: repErrBit + 6,
  errShutdown: repErrBit + 7,
  errBlockSizeReqd: repErrBit + 8,
  errTooBig: repErrBit + 9,
} as const;

export const info = { export: 0, name: 1, description: 2, blockSize: 3 } as const;

export const transmissionFlag = {
  hasFlags: 1 << 0,
  readOnly: 1 << 1,
  sendFlush: 1 << 2,
  sendFua: 1 << 3,
  rotational: 1 << 4,
  sendTrim: 1 << 5,
  sendWriteZeroes: 1 << 6,
  sendDf: 1 << 7,
  canMultiConn: 1 << 8,
} as const;

export const cmd = { read: 0, write: 1, disc: 2, flush: 3, trim: 4, cache: 5, writeZeroes: 6, blockStatus: 7 } as const;
export const cmdFlag = { fua: 1 << 0, noHole: 1 << 1, df: 1 << 2, reqOne: 1 << 3, fastZero: 1 << 4 } as const;

export const replyFlagDone = 1 << 0;
export const replyType = { none: 0, offsetData: 1, offsetHole: 2, error: 0x8001, errorOffset: 0x8002 } as const;

// Errno values on the wire are Linux's, whatever the server's platform.
export const errno = { eperm: 1, eio: 5, enomem: 12, einval: 22, enospc: 28, eoverflow: 75, enotsup: 95, eshutdown: 108 } as const;

export const handshakeBytes = 18;
export const clientFlagsBytes = 4;
export const optionHeaderBytes = 16;
export const requestHeaderBytes = 28;
export const simpleReplyHeaderBytes = 16;
export const structuredReplyHeaderBytes = 20;
export const exportNameReplyZeroesBytes = 124;

/** The server's first message: magic, IHAVEOPT and the handshake flags. */
export function encodeHandshake(flags: number): Buffer {
  const b = Buffer.alloc(handshakeBytes);
  b.writeBigUInt64BE(nbdMagic, 0);
  b.writeBigUInt64BE(ihaveoptMagic, 8);
  b.writeUInt16BE(flags, 16);
  return b;
}

export interface OptionHeader {
  magic: bigint;
  option: number;
  length: number;
}

export function decodeOptionHeader(b: Buffer): OptionHeader {
  return { magic: b.readBigUInt64BE(0), option: b.readUInt32BE(8), length: b.readUInt32BE(12) };
}

export function encodeOption(option: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(optionHeaderBytes + data.length);
  b.writeBigUInt64BE(ihaveoptMagic, 0);
  b.writeUInt32BE(option, 8);
  b.writeUInt32BE(data.length, 12);
  data.copy(b, optionHeaderBytes);
  return b;
}

export function encodeOptionReply(option: number, type: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(20 + data.length);
  b.writeBigUInt64BE(optionReplyMagic, 0);
  b.writeUInt32BE(option, 8);
  b.writeUInt32BE(type, 12);
  b.writeUInt32BE(data.length, 16);
  data.copy(b, 20);
  return b;
}

/** NBD_REP_SERVER payload for NBD_OPT_LIST: the export name, length-prefixed. */
export function encodeServerEntry(name: string): Buffer {
  const n = Buffer.from(name, "utf8");
  const b = Buffer.alloc(4 + n.length);
  b.writeUInt32BE(n.length, 0);
  n.copy(b, 4);
  return b;
}

export function encodeInfoExport(sizeBytes: bigint, flags: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(info.export, 0);
  b.writeBigUInt64BE(sizeBytes, 2);
  b.writeUInt16BE(flags, 10);
  return b;
}

export interface BlockSizes {
  minimumBytes: number;
  preferredBytes: number;
  maximumBytes: number;
}

export function encodeInfoBlockSize(s: BlockSizes): Buffer {
  const b = Buffer.alloc(14);
  b.writeUInt16BE(info.blockSize, 0);
  b.writeUInt32BE(s.minimumBytes, 2);
  b.writeUInt32BE(s.preferredBytes, 6);
  b.writeUInt32BE(s.maximumBytes, 10);
  return b;
}

/** Reply to NBD_OPT_EXPORT_NAME (no option-reply framing; there is no way to refuse). */
export function encodeExportNameReply(sizeBytes: bigint, flags: number, noZeroes: boolean): Buffer {
  const b = Buffer.alloc(10 + (noZeroes ? 0 : exportNameReplyZeroesBytes));
  b.writeBigUInt64BE(sizeBytes, 0);
  b.writeUInt16BE(flags, 8);
  return b;
}

export interface InfoRequest {
  name: string;
  infos: number[];
}

/** Decodes NBD_OPT_INFO / NBD_OPT_GO data; null when the lengths do not add up. */
export function decodeInfoRequest(data: Buffer): InfoRequest | null {
  if (data.length < 6) return null;
  const nameBytes = data.readUInt32BE(0);
  if (4 + nameBytes + 2 > data.length) return null;
  const name = data.toString("utf8", 4, 4 + nameBytes);
  const count = data.readUInt16BE(4 + nameBytes);
  if (4 + nameBytes + 2 + count * 2 !== data.length) return null;
  const infos: number[] = [];
  for (let i = 0; i < count; i++) infos.push(data.readUInt16BE(4 + nameBytes + 2 + i * 2));
  return { name, infos };
}

export function encodeInfoRequest(req: InfoRequest): Buffer {
  const n = Buffer.from(req.name, "utf8");
  const b = Buffer.alloc(4 + n.length + 2 + req.infos.length * 2);
  b.writeUInt32BE(n.length, 0);
  n.copy(b, 4);
  b.writeUInt16BE(req.infos.length, 4 + n.length);
  req.infos.forEach((t, i) => b.writeUInt16BE(t, 4 + n.length + 2 + i * 2));
  return b;
}

export interface Request {
  magic: number;
  flags: number;
  type: number;
  handle: bigint;
  offset: bigint;
  length: number;
}

export function decodeRequest(b: Buffer, at = 0): Request {
  return {
    magic: b.readUInt32BE(at),
    flags: b.readUInt16BE(at + 4),
    type: b.readUInt16BE(at + 6),
    handle: b.readBigUInt64BE(at + 8),
    offset: b.readBigUInt64BE(at + 16),
    length: b.readUInt32BE(at + 24),
  };
}

export function encodeRequest(r: Omit<Request, "magic">): Buffer {
  const b = Buffer.alloc(requestHeaderBytes);
  b.writeUInt32BE(requestMagic, 0);
  b.writeUInt16BE(r.flags, 4);
  b.writeUInt16BE(r.type, 6);
  b.writeBigUInt64BE(r.handle, 8);
  b.writeBigUInt64BE(r.offset, 16);
  b.writeUInt32BE(r.length, 24);
  return b;
}

/** Simple reply header; for a successful READ the data follows it on the wire. */
export function encodeSimpleReply(handle: bigint, error: number): Buffer {
  const b = Buffer.allocUnsafe(simpleReplyHeaderBytes);
  b.writeUInt32BE(simpleReplyMagic, 0);
  b.writeUInt32BE(error, 4);
  b.writeBigUInt64BE(handle, 8);
  return b;
}

export function encodeStructuredHeader(flags: number, type: number, handle: bigint, payloadBytes: number): Buffer {
  const b = Buffer.allocUnsafe(structuredReplyHeaderBytes);
  writeStructuredHeader(b, flags, type, handle, payloadBytes);
  return b;
}

function writeStructuredHeader(b: Buffer, flags: number, type: number, handle: bigint, payloadBytes: number): void {
  b.writeUInt32BE(structuredReplyMagic, 0);
  b.writeUInt16BE(flags, 4);
  b.writeUInt16BE(type, 6);
  b.writeBigUInt64BE(handle, 8);
  b.writeUInt32BE(payloadBytes, 16);
}

/** Header of a final NBD_REPLY_TYPE_OFFSET_DATA chunk, including the offset; the data follows. */
export function encodeOffsetDataHeader(handle: bigint, offset: bigint, dataBytes: number): Buffer {
  const b = Buffer.allocUnsafe(structuredReplyHeaderBytes + 8);
  writeStructuredHeader(b, replyFlagDone, replyType.offsetData, handle, 8 + dataBytes);
  b.writeBigUInt64BE(offset, structuredReplyHeaderBytes);
  return b;
}

export function encodeStructuredNone(handle: bigint): Buffer {
  return encodeStructuredHeader(replyFlagDone, replyType.none, handle, 0);
}

/** A final NBD_REPLY_TYPE_ERROR chunk; the message is for humans and truncated to a safe length. */
export function encodeStructuredError(handle: bigint, error: number, message: string): Buffer {
  const msg = Buffer.from(message, "utf8").subarray(0, structuredErrorMessageBytesMax);
  const b = Buffer.alloc(structuredReplyHeaderBytes + 6 + msg.length);
  writeStructuredHeader(b, replyFlagDone, replyType.error, handle, 6 + msg.length);
  b.writeUInt32BE(error, structuredReplyHeaderBytes);
  b.writeUInt16BE(msg.length, structuredReplyHeaderBytes + 4);
  msg.copy(b, structuredReplyHeaderBytes + 6);
  return b;
}

/** Strings in NBD should stay under 256 bytes and must stay under 4096. */
export const structuredErrorMessageBytesMax = 256;
