// Tests of the hand-written etcd message codecs: the bytes of a PutRequest, and decoding of
// responses built field by field as etcd 3.4 sends them (including fields we do not read).
import { describe, expect, it } from "vitest";
import { decodePutResponse, decodeRangeResponse, decodeStatusResponse, encodePutRequest, encodeRangeRequest } from "./etcd-client.ts";
import { ProtoWriter } from "./protowire.ts";

const memberId = 0xaabbccddeeff0011n; // above 2^63: must survive as unsigned
const header = (): Buffer => new ProtoWriter().varint(1, 0x1234n).varint(2, memberId).varint(3, 42).varint(4, 7).finish();

describe("etcd request encoding", () => {
  it("writes key=1, value=2 and lease=3 as etcd's PutRequest", () => {
    expect(encodePutRequest(Buffer.from("a"), Buffer.from("b")).toString("hex")).toBe("0a0161120162");
    expect(encodePutRequest(Buffer.from("a"), Buffer.from("b"), 5n).toString("hex")).toBe("0a01611201621805");
  });

  it("writes a single-key RangeRequest", () => {
    expect(encodeRangeRequest(Buffer.from("key")).toString("hex")).toBe("0a036b6579");
  });
});

describe("etcd response decoding", () => {
  it("reads the ResponseHeader of a PutResponse", () => {
    const res = decodePutResponse(new ProtoWriter().bytes(1, header()).finish());
    expect(res.header).toEqual({ clusterId: 0x1234n, memberId, revision: 42n, raftTerm: 7n });
  });

  it("reads leader, term and version from a StatusResponse and skips fields it does not know", () => {
    const msg = new ProtoWriter()
      .bytes(1, header())
      .bytes(2, "3.4.23")
      .varint(3, 20480)
      .varint(4, memberId)
      .varint(5, 99)
      .varint(6, 3)
      .varint(7, 98) // raftAppliedIndex
      .bytes(8, "NOSPACE") // errors
      .finish();
    const s = decodeStatusResponse(msg);
    expect(s.leader).toBe(memberId);
    expect(s.header.memberId).toBe(memberId);
    expect(s.version).toBe("3.4.23");
    expect(s.raftIndex).toBe(99n);
    expect(s.raftTerm).toBe(3n);
  });

  it("reads every KeyValue of a RangeResponse", () => {
    const kv = (k: string, v: string, mod: number): Buffer =>
      new ProtoWriter().bytes(1, k).varint(2, 1).varint(3, mod).varint(4, 2).bytes(5, v).finish();
    const msg = new ProtoWriter().bytes(1, header()).bytes(2, kv("k1", "v1", 5)).bytes(2, kv("k2", "v2", 6)).varint(3, true).varint(4, 2).finish();
    const r = decodeRangeResponse(msg);
    expect(r.kvs.map((x) => [x.key.toString(), x.value.toString(), x.modRevision])).toEqual([["k1", "v1", 5n], ["k2", "v2", 6n]]);
    expect(r.more).toBe(true);
    expect(r.count).toBe(2n);
  });

  it("decodes an empty response as all defaults", () => {
    const r = decodeRangeResponse(Buffer.alloc(0));
    expect(r.kvs).toEqual([]);
    expect(r.header.revision).toBe(0n);
  });
});
