// Typed commands of the replicated state machine, their validation (done BEFORE proposal, so a
// bad request changes nothing) and their compact binary encoding as Raft entry data.
// Every command travels in an envelope with the proposer's clientId + seq (exactly-once
// de-duplication of retried proposals) and the proposer-stamped time atMs: apply reads no clock.
import { CommandError } from "./errors.ts";
import { decodePayload, encodePayload } from "./modules.ts";
import { registry } from "./registry.ts";

export const keyMaxBytes = 1024;
export const valueMaxBytes = 1024 * 1024;
export const clientIdMaxBytes = 128;
export const nodeNameMaxChars = 63;
export const nodeAddressMaxChars = 255;
/** Version byte leading every encoded envelope, so the format can evolve. */
export const commandFormatVersion = 1;

export type NodeRole = "voter" | "learner";
export const nodeRoles: readonly NodeRole[] = ["voter", "learner"];

export type Command =
  | { type: "kv.put"; key: Uint8Array; value: Uint8Array }
  | { type: "kv.delete"; key: Uint8Array }
  /** expectedVersion 0 means "the key must not exist". */
  | { type: "kv.cas"; key: Uint8Array; expectedVersion: number; value: Uint8Array }
  | { type: "node.upsert"; id: number; name: string; address: string; role: NodeRole }
  | { type: "node.remove"; id: number }
  | { type: "node.heartbeat"; id: number; atMs: number }
  /** A command of a state module (modules.ts), by name, with its payload. */
  | { type: "ext"; name: string; payload: unknown };

export type CommandType = Command["type"];

export interface Envelope {
  clientId: string;
  /** Per-client sequence number, from 1, increasing with each new (not retried) proposal. */
  seq: number;
  /** Proposer's wall-clock time in ms since the epoch. */
  atMs: number;
  command: Command;
}

const typeCodes: Record<CommandType, number> = {
  "kv.put": 1, "kv.delete": 2, "kv.cas": 3, "node.upsert": 4, "node.remove": 5, "node.heartbeat": 6, ext: 7,
};
const typesByCode = new Map<number, CommandType>(Object.entries(typeCodes).map(([t, c]) => [c, t as CommandType]));

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });
const nodeNamePattern = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

function check(ok: boolean, type: string, field: string, reason: string): void {
  if (!ok) throw new CommandError(type, field, reason);
}

function checkInt(v: unknown, min: number, type: string, field: string): void {
  check(typeof v === "number" && Number.isSafeInteger(v) && v >= min, type, field, `must be an integer ≥ ${min} (got ${String(v)})`);
}

function checkBytes(v: unknown, min: number, max: number, limitName: string, type: string, field: string): void {
  check(v instanceof Uint8Array, type, field, "must be bytes (Uint8Array)");
  const n = (v as Uint8Array).byteLength;
  check(n >= min, type, field, `must not be empty`);
  check(n <= max, type, field, `is ${n} bytes, over the limit of ${max} bytes (${limitName})`);
}

function checkNodeFields(c: Extract<Command, { type: "node.upsert" }>): void {
  const t = c.type;
  check(typeof c.name === "string" && c.name.length <= nodeNameMaxChars && nodeNamePattern.test(c.name), t, "name",
    `must be a lower-case DNS label of 1 to ${nodeNameMaxChars} characters (got ${JSON.stringify(c.name)})`);
  check(typeof c.address === "string" && c.address.length > 0 && c.address.length <= nodeAddressMaxChars, t, "address",
    `must be "host:port" of at most ${nodeAddressMaxChars} characters`);
  const port = Number(/:(\d{1,5})$/.exec(c.address)?.[1]);
  check(port >= 1 && port <= 65535, t, "address", `must end in ":port" with a port from 1 to 65535 (got ${JSON.stringify(c.address)})`);
  check(nodeRoles.includes(c.role), t, "role", `must be one of ${nodeRoles.join(", ")} (got ${JSON.stringify(c.role)})`);
}

/** Throws CommandError naming the field and the reason; call it before proposing. */
export function validateEnvelope(env: Envelope): void {
  const c = env.command as Command | undefined;
  const t = typeof c?.type === "string" ? c.type : "(unknown)";
  check(c !== undefined && c.type in typeCodes, t, "type", `must be one of ${Object.keys(typeCodes).join(", ")}`);
  check(typeof env.clientId === "string" && env.clientId.length > 0 && utf8.encode(env.clientId).byteLength <= clientIdMaxBytes, t, "clientId",
    `must be a non-empty string of at most ${clientIdMaxBytes} bytes (clientIdMaxBytes)`);
  checkInt(env.seq, 1, t, "seq");
  checkInt(env.atMs, 0, t, "atMs");
  const cmd = c as Command;
  switch (cmd.type) {
    case "kv.cas":
      checkInt(cmd.expectedVersion, 0, t, "expectedVersion");
      checkBytes(cmd.key, 1, keyMaxBytes, "keyMaxBytes", t, "key");
      checkBytes(cmd.value, 0, valueMaxBytes, "valueMaxBytes", t, "value");
      break;
    case "kv.put":
      checkBytes(cmd.key, 1, keyMaxBytes, "keyMaxBytes", t, "key");
      checkBytes(cmd.value, 0, valueMaxBytes, "valueMaxBytes", t, "value");
      break;
    case "kv.delete":
      checkBytes(cmd.key, 1, keyMaxBytes, "keyMaxBytes", t, "key");
      break;
    case "node.upsert":
      checkInt(cmd.id, 1, t, "id");
      checkNodeFields(cmd);
      break;
    case "node.remove":
      checkInt(cmd.id, 1, t, "id");
      break;
    case "node.heartbeat":
      checkInt(cmd.id, 1, t, "id");
      checkInt(cmd.atMs, 0, t, "atMs");
      break;
    case "ext":
      check(typeof cmd.name === "string" && cmd.name.length > 0, t, "name", "must name a module command");
      cmd.payload = registry.spec(cmd.name).validate(cmd.payload);
      break;
  }
}

class Writer {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  private n = 0;

  private reserve(bytes: number): void {
    if (this.n + bytes <= this.buf.byteLength) return;
    const next = new Uint8Array(Math.max(this.buf.byteLength * 2, this.n + bytes));
    next.set(this.buf.subarray(0, this.n));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number): void {
    this.reserve(1);
    this.view.setUint8(this.n, v);
    this.n += 1;
  }
  f64(v: number): void {
    this.reserve(8);
    this.view.setFloat64(this.n, v);
    this.n += 8;
  }
  bytes(v: Uint8Array): void {
    this.reserve(4 + v.byteLength);
    this.view.setUint32(this.n, v.byteLength);
    this.buf.set(v, this.n + 4);
    this.n += 4 + v.byteLength;
  }
  str(v: string): void {
    this.bytes(utf8.encode(v));
  }
  done(): Uint8Array {
    return this.buf.slice(0, this.n);
  }
}

/** Validates, then encodes. The result is the data of a Normal Raft entry. */
export function encodeEnvelope(env: Envelope): Uint8Array {
  validateEnvelope(env);
  const w = new Writer();
  const c = env.command;
  w.u8(commandFormatVersion);
  w.u8(typeCodes[c.type]);
  w.str(env.clientId);
  w.f64(env.seq);
  w.f64(env.atMs);
  switch (c.type) {
    case "kv.put": w.bytes(c.key); w.bytes(c.value); break;
    case "kv.delete": w.bytes(c.key); break;
    case "kv.cas": w.bytes(c.key); w.f64(c.expectedVersion); w.bytes(c.value); break;
    case "node.upsert": w.f64(c.id); w.str(c.name); w.str(c.address); w.str(c.role); break;
    case "node.remove": w.f64(c.id); break;
    case "node.heartbeat": w.f64(c.id); w.f64(c.atMs); break;
    case "ext": w.str(c.name); w.str(encodePayload(c.payload)); break;
  }
  return w.done();
}

class Reader {
  private n = 0;
  private readonly view: DataView;
  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  private need(bytes: number): void {
    if (this.n + bytes > this.buf.byteLength) throw new CommandError("(decoding)", "data", `is truncated at byte ${this.n}`);
  }
  u8(): number {
    this.need(1);
    return this.view.getUint8(this.n++);
  }
  f64(): number {
    this.need(8);
    const v = this.view.getFloat64(this.n);
    this.n += 8;
    return v;
  }
  bytes(): Uint8Array {
    this.need(4);
    const len = this.view.getUint32(this.n);
    this.need(4 + len);
    // A view, not a copy: entry data is never mutated once in the log.
    const v = this.buf.subarray(this.n + 4, this.n + 4 + len);
    this.n += 4 + len;
    return v;
  }
  str(): string {
    return utf8Strict.decode(this.bytes());
  }
  end(): void {
    if (this.n !== this.buf.byteLength) throw new CommandError("(decoding)", "data", `has ${this.buf.byteLength - this.n} trailing bytes`);
  }
}

function readCommand(type: CommandType, r: Reader): Command {
  switch (type) {
    case "kv.put": return { type, key: r.bytes(), value: r.bytes() };
    case "kv.delete": return { type, key: r.bytes() };
    case "kv.cas": return { type, key: r.bytes(), expectedVersion: r.f64(), value: r.bytes() };
    case "node.upsert": return { type, id: r.f64(), name: r.str(), address: r.str(), role: r.str() as NodeRole };
    case "node.remove": return { type, id: r.f64() };
    case "node.heartbeat": return { type, id: r.f64(), atMs: r.f64() };
    case "ext": return { type, name: r.str(), payload: decodePayload(r.str()) };
  }
}

/** Decodes and re-validates entry data; throws CommandError on anything malformed. */
export function decodeEnvelope(data: Uint8Array): Envelope {
  const r = new Reader(data);
  const version = r.u8();
  if (version !== commandFormatVersion) throw new CommandError("(decoding)", "data", `has format version ${version}, expected ${commandFormatVersion}`);
  const code = r.u8();
  const type = typesByCode.get(code);
  if (!type) throw new CommandError("(decoding)", "type", `has unknown command code ${code}`);
  const clientId = r.str();
  const seq = r.f64();
  const atMs = r.f64();
  const env: Envelope = { clientId, seq, atMs, command: readCommand(type, r) };
  r.end();
  validateEnvelope(env);
  return env;
}
