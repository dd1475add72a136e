import { describe, expect, it } from "vitest";
import { EntryType, MessageType, type Message } from "../types.ts";
import { CodecError, decodeBatch, encodeBatch, Reader, Writer } from "./codec.ts";

function msg(over: Partial<Message>): Message {
  return { type: MessageType.App, from: 1, to: 2, term: 3, logTerm: 2, index: 10, entries: [], commit: 9, reject: false, rejectHint: 0, ...over };
}

describe("raft wire codec", () => {
  it("round-trips varints at the edges of the safe range", () => {
    const values = [0, 1, 127, 128, 16383, 16384, 2 ** 31, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER];
    const w = new Writer(1);
    for (const v of values) w.uvarint(v);
    const r = new Reader(w.finish());
    expect(values.map(() => r.uvarint())).toEqual(values);
    expect(r.done()).toBe(true);
  });

  it("refuses to encode negative or fractional numbers", () => {
    expect(() => new Writer().uvarint(-1)).toThrow(CodecError);
    expect(() => new Writer().uvarint(1.5)).toThrow(CodecError);
  });

  it("round-trips every field of a batch of messages", () => {
    const batch: Message[] = [
      msg({ entries: [{ term: 3, index: 11, type: EntryType.Normal, data: new Uint8Array([1, 2, 3]) }, { term: 3, index: 12, type: EntryType.ConfChange, data: new Uint8Array(300).fill(7) }] }),
      msg({ type: MessageType.AppResp, reject: true, rejectHint: 4, logTermHint: 2 }),
      msg({ type: MessageType.Heartbeat, context: new TextEncoder().encode("read-42") }),
      msg({ type: MessageType.Snap, snapshot: { metadata: { index: 100, term: 3, confState: { voters: [1, 2, 3], learners: [4] } }, data: new Uint8Array([9, 9]) } }),
    ];
    const decoded = decodeBatch(encodeBatch(batch));
    expect(decoded.map(normalize)).toEqual(batch.map(normalize));
  });

  it("rejects truncated frames, trailing bytes and unknown versions", () => {
    const frame = encodeBatch([msg({ entries: [{ term: 1, index: 1, type: EntryType.Normal, data: new Uint8Array(10) }] })]);
    expect(() => decodeBatch(frame.subarray(0, frame.length - 3))).toThrow(/truncated/);
    expect(() => decodeBatch(Buffer.concat([frame, Buffer.from([0])]))).toThrow(/trailing/);
    const other = Buffer.from(frame);
    other[0] = 99;
    expect(() => decodeBatch(other)).toThrow(/wire version 99/);
  });
});

/** Compare byte arrays by content, whatever their backing buffer. */
function normalize(m: Message): unknown {
  const bytes = (v: unknown): unknown => (v instanceof Uint8Array ? Array.from(v) : v);
  return {
    ...m,
    entries: m.entries.map((e) => ({ ...e, data: bytes(e.data) })),
    context: bytes(m.context),
    snapshot: m.snapshot && { ...m.snapshot, data: bytes(m.snapshot.data) },
  };
}
