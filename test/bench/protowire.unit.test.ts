// Tests of the minimal protobuf wire codec against the examples of the protobuf encoding guide
// and against the failure modes a decoder meets on a truncated or hostile message.
import { describe, expect, it } from "vitest";
import { ProtoWireError, ProtoWriter, decodeFields, decodeVarint, encodeVarint, lastField, toInt64 } from "./protowire.ts";

function hex(b: Buffer): string {
  return b.toString("hex");
}

describe("varint", () => {
  it("encodes the encoding guide's examples", () => {
    expect(hex(encodeVarint(1))).toBe("01");
    expect(hex(encodeVarint(150))).toBe("9601");
    expect(hex(encodeVarint(300))).toBe("ac02");
    expect(hex(encodeVarint(0))).toBe("00");
  });

  it("round-trips values across the 32-bit and 64-bit boundaries", () => {
    const values = [0n, 127n, 128n, 16383n, 16384n, 0x7fffffffn, 0x80000000n, 0xffffffffn, 0x100000000n, (1n << 63n) + 5n, (1n << 64n) - 1n];
    for (const v of values) {
      const enc = encodeVarint(v);
      const dec = decodeVarint(enc, 0);
      expect(dec.value).toBe(v);
      expect(dec.next).toBe(enc.length);
    }
    expect(encodeVarint((1n << 64n) - 1n).length).toBe(10);
  });

  it("decodes at an offset and reports where it stopped", () => {
    const buf = Buffer.from([0xff, 0x96, 0x01, 0x07]);
    expect(decodeVarint(buf, 1)).toEqual({ value: 150n, next: 3 });
  });

  it("refuses values that do not fit in 64 bits", () => {
    expect(() => encodeVarint(1n << 64n)).toThrow(ProtoWireError);
    expect(() => encodeVarint(-1)).toThrow(/not an unsigned 64-bit value/);
    const elevenBytes = Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
    expect(() => decodeVarint(elevenBytes, 0)).toThrow(/longer than 10 bytes/);
    const tenBytesTooBig = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    expect(() => decodeVarint(tenBytesTooBig, 0)).toThrow(/exceeds 64 bits/);
  });

  it("reports a varint cut short as truncated", () => {
    try {
      decodeVarint(Buffer.from([0x96]), 0);
      expect.unreachable("decoding should have thrown");
    } catch (err) {
      expect(err).toBeInstanceOf(ProtoWireError);
      expect((err as ProtoWireError).code).toBe("PROTO_TRUNCATED");
    }
  });
});

describe("ProtoWriter", () => {
  it("writes the encoding guide's Test1 and Test2 messages", () => {
    expect(hex(new ProtoWriter().varint(1, 150).finish())).toBe("089601");
    expect(hex(new ProtoWriter().bytes(2, "testing").finish())).toBe("120774657374696e67");
  });

  it("writes negative int64 as ten bytes of two's complement", () => {
    const msg = new ProtoWriter().varint(3, -1n).finish();
    expect(hex(msg)).toBe("18ffffffffffffffffff01");
    const f = decodeFields(msg)[0];
    expect(f && toInt64(f.varint)).toBe(-1n);
  });

  it("omits proto3 default values and keeps field order", () => {
    const msg = new ProtoWriter().bytes(1, Buffer.from("k")).bytes(2, Buffer.alloc(0)).varint(3, 0).varint(4, true).finish();
    expect(decodeFields(msg).map((f) => f.field)).toEqual([1, 4]);
  });

  it("rejects field numbers outside the protobuf range", () => {
    expect(() => new ProtoWriter().varint(0, 1)).toThrow(/outside 1\.\.536870911/);
    expect(() => new ProtoWriter().bytes(1 << 29, "x")).toThrow(ProtoWireError);
  });
});

describe("decodeFields", () => {
  it("round-trips a nested message with a large field number", () => {
    const inner = new ProtoWriter().varint(2, 0xdeadbeefcafef00dn).finish();
    const outer = new ProtoWriter().bytes(1, inner).bytes(300_000, Buffer.from([1, 2, 3])).finish();
    const fields = decodeFields(outer);
    expect(fields.map((f) => [f.field, f.wireType])).toEqual([[1, 2], [300_000, 2]]);
    const header = lastField(fields, 1);
    expect(header && lastField(decodeFields(header.bytes), 2)?.varint).toBe(0xdeadbeefcafef00dn);
    expect([...(lastField(fields, 300_000)?.bytes ?? [])]).toEqual([1, 2, 3]);
  });

  it("skips unknown fixed32 and fixed64 fields and lets the last scalar win", () => {
    const msg = Buffer.concat([
      Buffer.from([0x0d, 1, 2, 3, 4]), // field 1, fixed32
      Buffer.from([0x11, 1, 2, 3, 4, 5, 6, 7, 8]), // field 2, fixed64
      new ProtoWriter().varint(3, 7).varint(3, 9).finish(),
    ]);
    const fields = decodeFields(msg);
    expect(fields.map((f) => f.field)).toEqual([1, 2, 3, 3]);
    expect(fields[1]?.bytes.length).toBe(8);
    expect(lastField(fields, 3)?.varint).toBe(9n);
    expect(lastField(fields, 4)).toBeUndefined();
  });

  it("rejects a length that runs past the end, a group and field number zero", () => {
    expect(() => decodeFields(Buffer.from([0x0a, 0x05, 0x61]))).toThrow(/runs past the end/);
    expect(() => decodeFields(Buffer.from([0x0b]))).toThrow(/unsupported wire type 3/);
    expect(() => decodeFields(Buffer.from([0x00, 0x01]))).toThrow(/field number 0/);
    expect(() => decodeFields(Buffer.from([0x0d, 1, 2]))).toThrow(/fixed32 runs past/);
  });

  it("returns no fields for an empty message", () => {
    expect(decodeFields(Buffer.alloc(0))).toEqual([]);
  });
});
