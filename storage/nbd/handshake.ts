// The fixed newstyle handshake and option haggling, over an abstract byte stream so it can be
// driven by a socket or by a test. Ends with the export chosen for the transmission phase, or
// null when the client aborted.
import type { BlockBackend } from "./backend.ts";
import {
  clientFlag,
  clientFlagsKnown,
  clientFlagsBytes,
  decodeInfoRequest,
  decodeOptionHeader,
  encodeExportNameReply,
  encodeHandshake,
  encodeInfoBlockSize,
  encodeInfoExport,
  encodeOptionReply,
  encodeServerEntry,
  handshakeFlag,
  ihaveoptMagic,
  opt,
  optionHeaderBytes,
  rep,
  transmissionFlag,
} from "./protocol.ts";
import type { BlockSizes } from "./protocol.ts";

export interface HandshakeIo {
  /** Resolves with exactly n bytes, or rejects when the peer went away. */
  read(n: number): Promise<Buffer>;
  write(b: Buffer): void;
}

export interface ExportTable {
  get(name: string): BlockBackend | undefined;
  names(): string[];
}

export interface HandshakeLimits {
  /** Option data beyond this is a protocol violation (names are at most 4096 bytes). */
  optionBytesMax: number;
  /** Options one connection may send before it must pick an export. */
  optionsMax: number;
  blockSizes: BlockSizes;
}

export interface Negotiated {
  name: string;
  backend: BlockBackend;
  structuredReplies: boolean;
  transmissionFlags: number;
}

export class NbdProtocolError extends Error {
  readonly code = "nbd_protocol";
  constructor(message: string) {
    super(message);
    this.name = "NbdProtocolError";
  }
}

export function transmissionFlagsFor(backend: BlockBackend, structuredReplies: boolean): number {
  let flags =
    transmissionFlag.hasFlags |
    transmissionFlag.sendFlush |
    transmissionFlag.sendFua |
    transmissionFlag.sendTrim |
    transmissionFlag.sendWriteZeroes;
  if (backend.flushCoversAllConnections) flags |= transmissionFlag.canMultiConn;
  if (backend.readOnly === true) flags |= transmissionFlag.readOnly;
  // Reads are always answered in one chunk, so "don't fragment" is honoured trivially.
  if (structuredReplies) flags |= transmissionFlag.sendDf;
  return flags;
}

interface State {
  structuredReplies: boolean;
  noZeroes: boolean;
}

export async function negotiate(io: HandshakeIo, exports: ExportTable, limits: HandshakeLimits): Promise<Negotiated | null> {
  io.write(encodeHandshake(handshakeFlag.fixedNewstyle | handshakeFlag.noZeroes));
  const flags = (await io.read(clientFlagsBytes)).readUInt32BE(0);
  if ((flags & ~clientFlagsKnown) !== 0) throw new NbdProtocolError(`unknown client flags 0x${flags.toString(16)}`);
  const state: State = { structuredReplies: false, noZeroes: (flags & clientFlag.noZeroes) !== 0 };
  for (let i = 0; i < limits.optionsMax; i++) {
    const header = decodeOptionHeader(await io.read(optionHeaderBytes));
    if (header.magic !== ihaveoptMagic) throw new NbdProtocolError("option without IHAVEOPT magic");
    if (header.length > limits.optionBytesMax) {
      throw new NbdProtocolError(`option ${header.option} carries ${header.length} bytes, over ${limits.optionBytesMax}`);
    }
    const data = header.length > 0 ? await io.read(header.length) : Buffer.alloc(0);
    const done = handleOption(io, exports, limits, state, header.option, data);
    if (done !== undefined) return done;
  }
  throw new NbdProtocolError(`more than ${limits.optionsMax} options without choosing an export`);
}

/** Returns a result when negotiation ends (export chosen or abort), undefined to continue. */
function handleOption(
  io: HandshakeIo,
  exports: ExportTable,
  limits: HandshakeLimits,
  state: State,
  option: number,
  data: Buffer,
): Negotiated | null | undefined {
  const reply = (type: number, payload?: Buffer): undefined => {
    io.write(encodeOptionReply(option, type, payload));
    return undefined;
  };
  const error = (type: number, message: string): undefined => reply(type, Buffer.from(message, "utf8"));
  switch (option) {
    case opt.exportName: {
      const name = data.toString("utf8");
      const backend = exports.get(name);
      // The protocol gives NBD_OPT_EXPORT_NAME no error reply: an unknown name ends the session.
      if (backend === undefined) throw new NbdProtocolError(`NBD_OPT_EXPORT_NAME for unknown export "${name}"`);
      const tflags = transmissionFlagsFor(backend, state.structuredReplies);
      io.write(encodeExportNameReply(BigInt(backend.sizeBytes), tflags, state.noZeroes));
      return { name, backend, structuredReplies: state.structuredReplies, transmissionFlags: tflags };
    }
    case opt.abort:
      reply(rep.ack);
      return null;
    case opt.list:
      if (data.length !== 0) return error(rep.errInvalid, "NBD_OPT_LIST takes no data");
      for (const name of exports.names()) reply(rep.server, encodeServerEntry(name));
      return reply(rep.ack);
    case opt.structuredReply:
      if (data.length !== 0) return error(rep.errInvalid, "NBD_OPT_STRUCTURED_REPLY takes no data");
      state.structuredReplies = true;
      return reply(rep.ack);
    case opt.info:
    case opt.go:
      return infoOrGo(io, exports, limits, state, option, data);
    default:
      return error(rep.errUnsup, `option ${option} is not supported by this server`);
  }
}

function infoOrGo(
  io: HandshakeIo,
  exports: ExportTable,
  limits: HandshakeLimits,
  state: State,
  option: number,
  data: Buffer,
): Negotiated | undefined {
  const req = decodeInfoRequest(data);
  if (req === null) {
    io.write(encodeOptionReply(option, rep.errInvalid, Buffer.from("malformed NBD_OPT_INFO/GO data")));
    return undefined;
  }
  const backend = exports.get(req.name);
  if (backend === undefined) {
    io.write(encodeOptionReply(option, rep.errUnknown, Buffer.from(`no export named "${req.name}"`)));
    return undefined;
  }
  const tflags = transmissionFlagsFor(backend, state.structuredReplies);
  io.write(encodeOptionReply(option, rep.info, encodeInfoExport(BigInt(backend.sizeBytes), tflags)));
  // Sent whether or not requested, so clients learn the 32 MiB payload bound.
  io.write(encodeOptionReply(option, rep.info, encodeInfoBlockSize(limits.blockSizes)));
  io.write(encodeOptionReply(option, rep.ack));
  if (option === opt.info) return undefined;
  return { name: req.name, backend, structuredReplies: state.structuredReplies, transmissionFlags: tflags };
}
