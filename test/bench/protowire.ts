// Protocol-buffers wire format, just enough of it to speak a few etcd v3 RPCs without a
// proto compiler: varints (uint64 as bigint, small values fast-pathed), length-delimited
// fields, and a field reader that skips what it does not know (fixed32/fixed64 included),
// as the protobuf spec requires of a decoder.

/** Wire types of the protobuf encoding (the low 3 bits of a field key). */
export const WireType = { varint: 0, fixed64: 1, lengthDelimited: 2, fixed32: 5 } as const;

/** A varint never takes more than 10 bytes (64 bits, 7 per byte). */
const varintBytesMax = 10;
const uint64Max = (1n << 64n) - 1n;

export class ProtoWireError extends Error {
  readonly code: "PROTO_TRUNCATED" | "PROTO_BAD_VARINT" | "PROTO_BAD_WIRE_TYPE" | "PROTO_BAD_FIELD" | "PROTO_OUT_OF_RANGE";
  constructor(code: ProtoWireError["code"], message: string) {
    super(message);
    this.name = "ProtoWireError";
    this.code = code;
  }
}

/** One decoded field: `varint` for wire type 0, `bytes` for 1, 2 and 5 (raw little-endian). */
export interface ProtoField {
  field: number;
  wireType: number;
  varint: bigint;
  bytes: Buffer;
}

const emptyBytes = Buffer.alloc(0);

/** Appends fields to a growing list of chunks; `finish()` concatenates them once. */
export class ProtoWriter {
  private readonly chunks: Buffer[] = [];

  /** uint64/int64/bool/enum: negative int64 values take 10 bytes (two's complement). */
  varint(field: number, value: bigint | number | boolean): this {
    const v = typeof value === "boolean" ? (value ? 1n : 0n) : BigInt(value);
    if (v === 0n) return this; // proto3 omits default values
    this.chunks.push(encodeVarint(fieldKey(field, WireType.varint)), encodeVarint(BigInt.asUintN(64, v)));
    return this;
  }

  /** bytes/string/embedded message. Empty values are omitted like any proto3 default. */
  bytes(field: number, value: Buffer | string): this {
    const b = typeof value === "string" ? Buffer.from(value, "utf8") : value;
    if (b.length === 0) return this;
    this.chunks.push(encodeVarint(fieldKey(field, WireType.lengthDelimited)), encodeVarint(b.length), b);
    return this;
  }

  finish(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

function fieldKey(field: number, wireType: number): number {
  if (!Number.isInteger(field) || field < 1 || field > 0x1fffffff) {
    throw new ProtoWireError("PROTO_BAD_FIELD", `encoding protobuf field: field number ${field} is outside 1..536870911`);
  }
  return field * 8 + wireType; // not `<<`: field numbers above 2^28 would overflow int32
}

/** Encodes an unsigned value of at most 64 bits as a varint. */
export function encodeVarint(value: bigint | number): Buffer {
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0 && value < 0x80000000) {
    const out: number[] = [];
    let v = value;
    while (v >= 0x80) {
      out.push((v & 0x7f) | 0x80);
      v >>>= 7;
    }
    out.push(v);
    return Buffer.from(out);
  }
  let v = BigInt(value);
  if (v < 0n || v > uint64Max) {
    throw new ProtoWireError("PROTO_OUT_OF_RANGE", `encoding varint: ${v} is not an unsigned 64-bit value`);
  }
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

/** Decodes a varint at `offset`; returns the value and the offset just past it. */
export function decodeVarint(buf: Buffer, offset: number): { value: bigint; next: number } {
  let result = 0n;
  let shift = 0n;
  for (let i = 0; i < varintBytesMax; i++) {
    const at = offset + i;
    if (at >= buf.length) {
      throw new ProtoWireError("PROTO_TRUNCATED", `decoding varint at byte ${offset}: message ends inside it`);
    }
    const byte = buf[at] as number;
    result |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) {
      if (result > uint64Max) {
        throw new ProtoWireError("PROTO_BAD_VARINT", `decoding varint at byte ${offset}: value exceeds 64 bits`);
      }
      return { value: result, next: at + 1 };
    }
    shift += 7n;
  }
  throw new ProtoWireError("PROTO_BAD_VARINT", `decoding varint at byte ${offset}: longer than ${varintBytesMax} bytes`);
}

/** Splits a message into its fields, in wire order (repeated fields appear several times). */
export function decodeFields(buf: Buffer): ProtoField[] {
  const fields: ProtoField[] = [];
  let offset = 0;
  while (offset < buf.length) {
    const key = decodeVarint(buf, offset);
    const field = Number(key.value >> 3n);
    const wireType = Number(key.value & 7n);
    if (field < 1) {
      throw new ProtoWireError("PROTO_BAD_FIELD", `decoding field key at byte ${offset}: field number 0 is invalid`);
    }
    offset = key.next;
    const read = readValue(buf, offset, wireType, field);
    fields.push({ field, wireType, varint: read.varint, bytes: read.bytes });
    offset = read.next;
  }
  return fields;
}

function readValue(buf: Buffer, offset: number, wireType: number, field: number): { varint: bigint; bytes: Buffer; next: number } {
  switch (wireType) {
    case WireType.varint: {
      const v = decodeVarint(buf, offset);
      return { varint: v.value, bytes: emptyBytes, next: v.next };
    }
    case WireType.lengthDelimited: {
      const len = decodeVarint(buf, offset);
      const end = len.next + Number(len.value);
      if (len.value > BigInt(buf.length) || end > buf.length) {
        throw new ProtoWireError("PROTO_TRUNCATED", `decoding field ${field}: length ${len.value} runs past the end of the message`);
      }
      return { varint: 0n, bytes: buf.subarray(len.next, end), next: end };
    }
    case WireType.fixed64:
    case WireType.fixed32: {
      const size = wireType === WireType.fixed64 ? 8 : 4;
      if (offset + size > buf.length) {
        throw new ProtoWireError("PROTO_TRUNCATED", `decoding field ${field}: fixed${size * 8} runs past the end of the message`);
      }
      return { varint: 0n, bytes: buf.subarray(offset, offset + size), next: offset + size };
    }
    default:
      throw new ProtoWireError("PROTO_BAD_WIRE_TYPE", `decoding field ${field}: unsupported wire type ${wireType} (groups are not used by proto3)`);
  }
}

/** The last occurrence of a scalar field wins (protobuf merge semantics); absent means default. */
export function lastField(fields: readonly ProtoField[], field: number): ProtoField | undefined {
  for (let i = fields.length - 1; i >= 0; i--) {
    const f = fields[i] as ProtoField;
    if (f.field === field) return f;
  }
  return undefined;
}

/** Reinterprets a decoded uint64 varint as int64 (for fields such as `revision`). */
export function toInt64(value: bigint): bigint {
  return BigInt.asIntN(64, value);
}
