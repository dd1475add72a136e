// Command validation (field + reason, before proposal) and the binary envelope encoding.
import { describe, expect, it } from "vitest";
import { decodeEnvelope, encodeEnvelope, keyMaxBytes, validateEnvelope, valueMaxBytes } from "./commands.ts";
import type { Command, Envelope } from "./commands.ts";
import { CommandError } from "./errors.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const env = (command: Command, over: Partial<Envelope> = {}): Envelope => ({ clientId: "node-1/api", seq: 7, atMs: 1_700_000_000_000, command, ...over });

function fieldError(e: Envelope): { field: string; message: string } | "valid" {
  try {
    validateEnvelope(e);
  } catch (err) {
    if (err instanceof CommandError) return { field: err.field, message: err.message };
    throw err;
  }
  return "valid";
}

describe("command envelopes", () => {
  it("round-trips every command type through the binary encoding", () => {
    const commands: Command[] = [
      { type: "kv.put", key: bytes("vm/web1"), value: bytes("{\"cpus\":2}") },
      { type: "kv.put", key: new Uint8Array([0, 255, 7]), value: new Uint8Array(0) },
      { type: "kv.delete", key: bytes("vm/web1") },
      { type: "kv.cas", key: bytes("lease/engine"), expectedVersion: 3, value: bytes("node-2") },
      { type: "node.upsert", id: 2, name: "host-b", address: "10.0.0.2:7443", role: "learner" },
      { type: "node.remove", id: 2 },
      { type: "node.heartbeat", id: 3, atMs: 1_700_000_000_123 },
    ];
    for (const c of commands) {
      const e = env(c, { clientId: "клиент-1", seq: 2 ** 40 });
      expect(decodeEnvelope(encodeEnvelope(e))).toEqual(e);
    }
  });

  it("is compact: a put costs at most 30 bytes beyond its key, value and client id", () => {
    const data = encodeEnvelope(env({ type: "kv.put", key: bytes("k1"), value: new Uint8Array(256) }));
    expect(data.byteLength - 256 - 2 - "node-1/api".length).toBeLessThanOrEqual(30);
  });

  it("accepts the bounds exactly and refuses one byte more, naming field and limit", () => {
    const key = new Uint8Array(keyMaxBytes);
    const value = new Uint8Array(valueMaxBytes);
    expect(fieldError(env({ type: "kv.put", key, value }))).toBe("valid");
    const longKey = fieldError(env({ type: "kv.put", key: new Uint8Array(keyMaxBytes + 1), value }));
    expect(longKey).toMatchObject({ field: "key" });
    expect(longKey !== "valid" && longKey.message).toMatch(/1025 bytes.*1024 bytes \(keyMaxBytes\)/);
    const bigValue = fieldError(env({ type: "kv.cas", key: bytes("k"), expectedVersion: 0, value: new Uint8Array(valueMaxBytes + 1) }));
    expect(bigValue).toMatchObject({ field: "value" });
    expect(bigValue !== "valid" && bigValue.message).toMatch(/valueMaxBytes/);
  });

  it("refuses bad fields with the field name", () => {
    const put: Command = { type: "kv.put", key: bytes("k"), value: bytes("v") };
    const upsert = { type: "node.upsert", id: 2, name: "host-b", address: "10.0.0.2:7443", role: "voter" } as const;
    const cases: [Envelope, string][] = [
      [env({ type: "kv.delete", key: new Uint8Array(0) }), "key"],
      [env({ type: "kv.put", key: "k" as unknown as Uint8Array, value: bytes("v") }), "key"],
      [env(put, { seq: 0 }), "seq"],
      [env(put, { seq: 1.5 }), "seq"],
      [env(put, { atMs: -1 }), "atMs"],
      [env(put, { clientId: "" }), "clientId"],
      [env(put, { clientId: "x".repeat(129) }), "clientId"],
      [env({ type: "kv.cas", key: bytes("k"), expectedVersion: -1, value: bytes("v") }), "expectedVersion"],
      [env({ ...upsert, name: "Host_B" }), "name"],
      [env({ ...upsert, name: "a".repeat(64) }), "name"],
      [env({ ...upsert, address: "10.0.0.2" }), "address"],
      [env({ ...upsert, address: "10.0.0.2:70000" }), "address"],
      [env({ ...upsert, role: "boss" as "voter" }), "role"],
      [env({ ...upsert, id: 0 }), "id"],
      [env({ type: "node.heartbeat", id: 1, atMs: Number.NaN }), "atMs"],
      [env({ type: "vm.start" } as unknown as Command), "type"],
    ];
    for (const [e, field] of cases) expect(fieldError(e), `${JSON.stringify(e.command.type)} ${field}`).toMatchObject({ field });
  });

  it("does not encode an invalid command", () => {
    expect(() => encodeEnvelope(env({ type: "node.remove", id: -4 }))).toThrow(CommandError);
  });

  it("refuses malformed entry data: truncated, trailing bytes, unknown version or type", () => {
    const good = encodeEnvelope(env({ type: "kv.put", key: bytes("k"), value: bytes("value") }));
    const mutated = (f: (b: Uint8Array) => Uint8Array) => () => decodeEnvelope(f(good.slice()));
    expect(mutated((b) => b.subarray(0, b.length - 1))).toThrow(/truncated/);
    expect(mutated((b) => new Uint8Array([...b, 0]))).toThrow(/trailing/);
    expect(mutated((b) => ((b[0] = 9), b))).toThrow(/format version 9/);
    expect(mutated((b) => ((b[1] = 99), b))).toThrow(/unknown command code 99/);
    expect(() => decodeEnvelope(new Uint8Array(0))).toThrow(CommandError);
  });
});
