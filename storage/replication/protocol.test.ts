import { describe, expect, it } from "vitest";
import {
  checkChecksumsRequest,
  encodeReplyHeader,
  encodeRequestHeader,
  errorPayload,
  op,
  protocolLimits,
  ProtocolError,
  replyDecoder,
  replyHeaderBytes,
  requestDecoder,
  requestHeaderBytes,
  requestPayloadBytesMax,
  status,
  statusName,
} from "./protocol.ts";

describe("replication protocol", () => {
  it("round-trips a request with payload, byte by byte through the streaming decoder", () => {
    const payload = Buffer.from("hello brick");
    const h = { op: op.write, flags: 1, handle: 2 ** 40 + 7, epoch: 12, offset: 2 ** 45 + 4096, length: 0, chunkBytes: 0 };
    const wire = Buffer.concat([encodeRequestHeader(h, payload.length), payload]);
    expect(wire.length).toBe(requestHeaderBytes + payload.length);
    const d = requestDecoder();
    const frames = [];
    for (const byte of wire) {
      d.push(Buffer.from([byte]));
      const f = d.next();
      if (f !== null) frames.push(f);
    }
    expect(frames).toHaveLength(1);
    expect(frames[0]).toMatchObject({ ...h, payloadBytes: payload.length });
    expect(frames[0]!.payload.equals(payload)).toBe(true);
  });

  it("decodes several frames from one chunk, payload as a view", () => {
    const a = encodeRequestHeader({ op: op.flush, flags: 0, handle: 1, epoch: 3, offset: 0, length: 0, chunkBytes: 0 }, 0);
    const data = Buffer.alloc(4096, 9);
    const b = encodeRequestHeader({ op: op.write, flags: 0, handle: 2, epoch: 3, offset: 8192, length: 0, chunkBytes: 0 }, data.length);
    const c = encodeRequestHeader({ op: op.checksums, flags: 0, handle: 3, epoch: 3, offset: 0, length: 1 << 20, chunkBytes: 65536 }, 0);
    const d = requestDecoder();
    const chunk = Buffer.concat([a, b, data, c]);
    d.push(chunk);
    const got = [d.next(), d.next(), d.next(), d.next()];
    expect(got.map((f) => f?.handle)).toEqual([1, 2, 3, undefined]);
    expect(got[1]!.payload.buffer).toBe(chunk.buffer);
    expect(got[2]).toMatchObject({ length: 1 << 20, chunkBytes: 65536 });
  });

  it("joins a payload spread over chunks and hands one inside a chunk out as a view", () => {
    const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
    const h = { op: op.write, flags: 0, handle: 5, epoch: 1, offset: 0, length: 0, chunkBytes: 0 };
    const wire = Buffer.concat([encodeRequestHeader(h, data.length), data, encodeRequestHeader({ ...h, handle: 6 }, 10), data.subarray(0, 10)]);
    const chunks = [wire.subarray(0, 100), wire.subarray(100, 700), wire.subarray(700)];
    const d = requestDecoder();
    for (const c of chunks) d.push(c);
    const big = d.next()!;
    const small = d.next()!;
    expect(big.payload.equals(data)).toBe(true);
    expect(small.payload.equals(data.subarray(0, 10))).toBe(true);
    expect(small.payload.buffer).toBe(chunks[2]!.buffer);
    expect(d.next()).toBeNull();
  });

  it("round-trips replies with status, value and payload", () => {
    const msg = Buffer.from("epoch 3 superseded");
    const d = replyDecoder();
    d.push(Buffer.concat([encodeReplyHeader({ status: status.stale_epoch, handle: 99, value: 5 }, msg.length), msg]));
    d.push(encodeReplyHeader({ status: status.ok, handle: 100, value: 0 }, 0));
    const r1 = d.next()!;
    expect(r1).toMatchObject({ status: status.stale_epoch, handle: 99, value: 5 });
    expect(r1.payload.toString()).toBe("epoch 3 superseded");
    expect(statusName(r1.status)).toBe("stale_epoch");
    expect(d.next()).toMatchObject({ status: 0, handle: 100 });
    expect(replyHeaderBytes).toBe(32);
  });

  it("rejects bad magic, oversized payloads and values beyond 2^53", () => {
    const bad = encodeRequestHeader({ op: op.read, flags: 0, handle: 1, epoch: 1, offset: 0, length: 0, chunkBytes: 0 }, 0);
    bad.writeUInt32BE(0xdeadbeef, 0);
    const d1 = requestDecoder();
    d1.push(bad);
    expect(() => d1.next()).toThrow(ProtocolError);

    const big = encodeRequestHeader({ op: op.write, flags: 0, handle: 1, epoch: 1, offset: 0, length: 0, chunkBytes: 0 }, requestPayloadBytesMax + 1);
    const d2 = requestDecoder();
    d2.push(big);
    expect(() => d2.next()).toThrow(/exceeds/);

    const huge = encodeRequestHeader({ op: op.read, flags: 0, handle: 1, epoch: 1, offset: 0, length: 0, chunkBytes: 0 }, 0);
    huge.writeUInt32BE(0xffffffff, 32);
    const d3 = requestDecoder();
    d3.push(huge);
    expect(() => d3.next()).toThrow(/offset is beyond 2\^53/);
  });

  it("bounds checksum requests and error messages", () => {
    expect(checkChecksumsRequest(2 ** 30 + 1, 1 << 20)).toMatch(/exceeds 1024 chunks/);
    expect(checkChecksumsRequest(1 << 20, 3000)).toMatch(/power of two/);
    expect(checkChecksumsRequest(64 << 20, 1 << 20)).toBeNull();
    expect(errorPayload("é".repeat(2000)).length).toBeLessThanOrEqual(protocolLimits.errorMessageBytesMax);
    expect(errorPayload("é".repeat(2000)).toString()).not.toContain("\uFFFD");
  });
});
