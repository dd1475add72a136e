// Byte-exact vectors for the NBD wire encoding, written out by hand from the protocol document
// (field order and widths, big-endian), so an encoder and its decoder cannot agree on a mistake.
import { describe, expect, it } from "vitest";
import { MemoryBackend } from "../brick/memory-backend.ts";
import { transmissionFlagsFor } from "./handshake.ts";
import {
  cmd,
  cmdFlag,
  decodeInfoRequest,
  decodeOptionHeader,
  decodeRequest,
  encodeExportNameReply,
  encodeHandshake,
  encodeInfoBlockSize,
  encodeInfoExport,
  encodeInfoRequest,
  encodeOffsetDataHeader,
  encodeOption,
  encodeOptionReply,
  encodeRequest,
  encodeServerEntry,
  encodeSimpleReply,
  encodeStructuredError,
  encodeStructuredNone,
  handshakeFlag,
  opt,
  rep,
} from "./protocol.ts";

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex");
const handle = 0x0102030405060708n;

describe("handshake and options", () => {
  it("greets with NBDMAGIC, IHAVEOPT and the fixed-newstyle + no-zeroes flags", () => {
    expect(encodeHandshake(handshakeFlag.fixedNewstyle | handshakeFlag.noZeroes)).toEqual(hex("4e42444d41474943 49484156454f5054 0003"));
  });

  it("frames an option and decodes its header", () => {
    const b = encodeOption(opt.go, hex("00000004 6469736b 0000"));
    expect(b).toEqual(hex("49484156454f5054 00000007 0000000a 00000004 6469736b 0000"));
    expect(decodeOptionHeader(b)).toEqual({ magic: 0x49484156454f5054n, option: 7, length: 10 });
  });

  it("frames option replies, errors with the high bit set", () => {
    expect(encodeOptionReply(opt.go, rep.ack)).toEqual(hex("0003e889045565a9 00000007 00000001 00000000"));
    expect(encodeOptionReply(opt.info, rep.errUnknown, Buffer.from("x"))).toEqual(hex("0003e889045565a9 00000006 80000006 00000001 78"));
    expect(rep.errUnsup).toBe(0x80000001);
  });

  it("encodes NBD_INFO_EXPORT and NBD_INFO_BLOCK_SIZE", () => {
    expect(encodeInfoExport(0x40000000n, 0x1ed)).toEqual(hex("0000 0000000040000000 01ed"));
    expect(encodeInfoBlockSize({ minimumBytes: 1, preferredBytes: 4096, maximumBytes: 32 * 1024 * 1024 })).toEqual(
      hex("0003 00000001 00001000 02000000"),
    );
  });

  it("decodes NBD_OPT_GO data and rejects inconsistent lengths", () => {
    expect(decodeInfoRequest(hex("00000004 6469736b 0002 0003 0001"))).toEqual({ name: "disk", infos: [3, 1] });
    expect(decodeInfoRequest(hex("00000000 0000"))).toEqual({ name: "", infos: [] });
    expect(decodeInfoRequest(hex("00000005 6469736b 0000"))).toBeNull();
    expect(decodeInfoRequest(hex("00000004 6469736b 0002 0003"))).toBeNull();
    expect(decodeInfoRequest(hex("00000004 6469736b 0000 00"))).toBeNull();
    expect(encodeInfoRequest({ name: "disk", infos: [3] })).toEqual(hex("00000004 6469736b 0001 0003"));
  });

  it("encodes NBD_REP_SERVER entries and the NBD_OPT_EXPORT_NAME reply", () => {
    expect(encodeServerEntry("ab")).toEqual(hex("00000002 6162"));
    expect(encodeExportNameReply(0x1000n, 0x0003, true)).toEqual(hex("0000000000001000 0003"));
    const withZeroes = encodeExportNameReply(0x1000n, 0x0003, false);
    expect(withZeroes.length).toBe(134);
    expect(withZeroes.subarray(10).equals(Buffer.alloc(124))).toBe(true);
  });

  it("advertises flush, FUA, trim, write-zeroes, multi-conn, and DF only with structured replies", () => {
    const b = new MemoryBackend(4096);
    expect(transmissionFlagsFor(b, true)).toBe(0x01 | 0x04 | 0x08 | 0x20 | 0x40 | 0x80 | 0x100);
    expect(transmissionFlagsFor(b, false)).toBe(0x01 | 0x04 | 0x08 | 0x20 | 0x40 | 0x100);
    const single = Object.assign(new MemoryBackend(4096), { flushCoversAllConnections: false });
    expect(transmissionFlagsFor(single, false) & 0x100).toBe(0);
  });
});

describe("transmission", () => {
  it("round-trips a request header", () => {
    const r = { flags: cmdFlag.fua, type: cmd.write, handle, offset: 0x1000n, length: 0x200 };
    const b = encodeRequest(r);
    expect(b).toEqual(hex("25609513 0001 0001 0102030405060708 0000000000001000 00000200"));
    expect(decodeRequest(b)).toEqual({ magic: 0x25609513, ...r });
    expect(decodeRequest(Buffer.concat([Buffer.alloc(3), b]), 3).handle).toBe(handle);
  });

  it("uses the spec's command and flag numbers", () => {
    expect([cmd.read, cmd.write, cmd.disc, cmd.flush, cmd.trim, cmd.writeZeroes]).toEqual([0, 1, 2, 3, 4, 6]);
    expect([cmdFlag.fua, cmdFlag.noHole, cmdFlag.df]).toEqual([1, 2, 4]);
  });

  it("encodes simple replies", () => {
    expect(encodeSimpleReply(handle, 0)).toEqual(hex("67446698 00000000 0102030405060708"));
    expect(encodeSimpleReply(handle, 22)).toEqual(hex("67446698 00000016 0102030405060708"));
  });

  it("encodes structured chunks: offset data, none and error, all final", () => {
    expect(encodeOffsetDataHeader(handle, 0x2000n, 8)).toEqual(hex("668e33ef 0001 0001 0102030405060708 00000010 0000000000002000"));
    expect(encodeStructuredNone(handle)).toEqual(hex("668e33ef 0001 0000 0102030405060708 00000000"));
    expect(encodeStructuredError(handle, 28, "full")).toEqual(hex("668e33ef 0001 8001 0102030405060708 0000000a 0000001c 0004 66756c6c"));
  });

  it("truncates long error messages to a bounded length", () => {
    const b = encodeStructuredError(handle, 5, "x".repeat(10_000));
    expect(b.readUInt16BE(24)).toBe(256);
    expect(b.readUInt32BE(16)).toBe(6 + 256);
  });
});
