// The key/value service of a node's replicated state over gRPC: what the Raft integration
// tests, the simulator's real-process twin and `npm run bench:raft` drive. Messages use the
// compact binary framing of the Raft transport (codec.ts) because this is a hot path; the
// user-facing API (proto-defined `trivet.v1`) arrives with the cluster issue and will wrap the
// same Replica calls.
import * as grpc from "@grpc/grpc-js";
import { Reader, Writer } from "../raft/driver/codec.ts";
import { HostError, type HostStats } from "../raft/driver/raft-host.ts";
import { CommandError } from "../state/errors.ts";
import type { Replica, RequestId } from "../state/replica.ts";
import type { CommandResult } from "../state/apply.ts";

const passthrough = {
  requestSerialize: (b: Buffer) => b,
  requestDeserialize: (b: Buffer) => b,
  responseSerialize: (b: Buffer) => b,
  responseDeserialize: (b: Buffer) => b,
};

const unary = (name: string) => ({ path: `/trivet.kv.v1.Kv/${name}`, requestStream: false, responseStream: false, ...passthrough });

export const kvServiceDefinition = {
  put: unary("Put"),
  delete: unary("Delete"),
  cas: unary("Cas"),
  get: unary("Get"),
  status: unary("Status"),
  checksum: unary("Checksum"),
} satisfies grpc.ServiceDefinition;

export interface KvPutRequest { key: Uint8Array; value: Uint8Array; request?: RequestId }
export interface KvCasRequest extends KvPutRequest { expectedVersion: number }
export interface KvGetRequest { key: Uint8Array; linearizable: boolean }
export interface KvGetResponse { value: Uint8Array | null; version: number; appliedIndex: number }

// ---- encoding -------------------------------------------------------------------------------

function writeRequestId(w: Writer, r: RequestId | undefined): void {
  w.bytes(Buffer.from(r?.clientId ?? ""));
  w.uvarint(r?.seq ?? 0);
}

function readRequestId(r: Reader): RequestId | undefined {
  const clientId = Buffer.from(r.bytes()).toString();
  const seq = r.uvarint();
  return clientId ? { clientId, seq } : undefined;
}

export function encodeMutation(m: KvPutRequest & { expectedVersion?: number }): Buffer {
  const w = new Writer(64 + m.key.length + m.value.length);
  w.bytes(m.key);
  w.bytes(m.value);
  w.uvarint(m.expectedVersion ?? 0);
  writeRequestId(w, m.request);
  return w.finish();
}

export function decodeMutation(b: Uint8Array): KvCasRequest {
  const r = new Reader(b);
  return { key: r.bytes(), value: r.bytes(), expectedVersion: r.uvarint(), request: readRequestId(r) };
}

function encodeResult(res: CommandResult): Buffer {
  return Buffer.from(JSON.stringify(res));
}

export function decodeResult(b: Uint8Array): CommandResult {
  return JSON.parse(Buffer.from(b).toString()) as CommandResult;
}

export function encodeGet(g: KvGetRequest): Buffer {
  const w = new Writer(16 + g.key.length);
  w.bytes(g.key);
  w.u8(g.linearizable ? 1 : 0);
  return w.finish();
}

function decodeGet(b: Uint8Array): KvGetRequest {
  const r = new Reader(b);
  return { key: r.bytes(), linearizable: r.u8() === 1 };
}

function encodeGetResponse(g: KvGetResponse): Buffer {
  const w = new Writer(32 + (g.value?.length ?? 0));
  w.u8(g.value ? 1 : 0);
  w.bytes(g.value ?? new Uint8Array(0));
  w.uvarint(g.version);
  w.uvarint(g.appliedIndex);
  return w.finish();
}

export function decodeGetResponse(b: Uint8Array): KvGetResponse {
  const r = new Reader(b);
  const found = r.u8() === 1;
  const value = r.bytes();
  return { value: found ? value : null, version: r.uvarint(), appliedIndex: r.uvarint() };
}

// ---- server -----------------------------------------------------------------------------------

function toStatus(err: unknown): grpc.ServiceError {
  const e = err instanceof Error ? err : new Error(String(err));
  let code = grpc.status.INTERNAL;
  if (e instanceof CommandError) code = grpc.status.INVALID_ARGUMENT;
  else if (e instanceof HostError) {
    code = { busy: grpc.status.RESOURCE_EXHAUSTED, timeout: grpc.status.DEADLINE_EXCEEDED, stopped: grpc.status.UNAVAILABLE, no_leader: grpc.status.UNAVAILABLE, rejected: grpc.status.FAILED_PRECONDITION }[e.code];
  }
  return Object.assign(e, { code, details: e.message, metadata: new grpc.Metadata() });
}

function handle<T>(fn: (req: Buffer) => Promise<T>, encode: (v: T) => Buffer): grpc.handleUnaryCall<Buffer, Buffer> {
  return (call, cb) => {
    fn(call.request).then((v) => cb(null, encode(v)), (err: unknown) => cb(toStatus(err)));
  };
}

export function kvServiceHandlers(replica: Replica): grpc.UntypedServiceImplementation {
  return {
    put: handle(async (b) => {
      const m = decodeMutation(b);
      return replica.execute({ type: "kv.put", key: m.key, value: m.value }, m.request);
    }, encodeResult),
    delete: handle(async (b) => {
      const m = decodeMutation(b);
      return replica.execute({ type: "kv.delete", key: m.key }, m.request);
    }, encodeResult),
    cas: handle(async (b) => {
      const m = decodeMutation(b);
      return replica.execute({ type: "kv.cas", key: m.key, expectedVersion: m.expectedVersion, value: m.value }, m.request);
    }, encodeResult),
    get: handle(async (b) => {
      const g = decodeGet(b);
      return replica.get(g.key, g.linearizable ? "linearizable" : "local");
    }, encodeGetResponse),
    status: handle(async () => {
      const s = replica.status();
      return { id: s.id, term: s.term, leader: s.leader, role: s.role, commit: s.commit, applied: s.appliedIndex, lastIndex: s.lastIndex, pending: s.pendingProposals, stats: s.stats, progress: s.progress ? Object.fromEntries(s.progress) : undefined };
    }, (v) => Buffer.from(JSON.stringify(v))),
    checksum: handle(async () => ({ appliedIndex: replica.stateMachine.appliedIndex, checksum: replica.stateMachine.checksum() }), (v) => Buffer.from(JSON.stringify(v))),
  };
}

// ---- client -----------------------------------------------------------------------------------

export const KvClientBase = grpc.makeGenericClientConstructor(kvServiceDefinition, "Kv");

export interface KvStatus { id: number; term: number; leader: number; role: string; commit: number; applied: number; lastIndex: number; pending: number; stats: HostStats; progress?: Record<string, { match: number; next: number; state: string }> }

type UnaryMethod = (req: Buffer, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Buffer) => void) => void;

/** A thin promise client of one node's Kv service. */
export class KvClient {
  private readonly client: grpc.Client;

  constructor(address: string, options: grpc.ChannelOptions = {}, credentials = grpc.credentials.createInsecure()) {
    this.client = new KvClientBase(address, credentials, options);
  }

  private call(method: keyof typeof kvServiceDefinition, req: Buffer, deadlineMs: number): Promise<Buffer> {
    const fn = (this.client as unknown as Record<string, UnaryMethod>)[method]!;
    return new Promise((resolve, reject) => {
      fn.call(this.client, req, { deadline: Date.now() + deadlineMs }, (err, res) => (err ? reject(err) : resolve(res!)));
    });
  }

  async put(key: Uint8Array, value: Uint8Array, request?: RequestId, deadlineMs = 15_000): Promise<CommandResult> {
    return decodeResult(await this.call("put", encodeMutation({ key, value, request }), deadlineMs));
  }

  async delete(key: Uint8Array, request?: RequestId, deadlineMs = 15_000): Promise<CommandResult> {
    return decodeResult(await this.call("delete", encodeMutation({ key, value: new Uint8Array(0), request }), deadlineMs));
  }

  async cas(key: Uint8Array, expectedVersion: number, value: Uint8Array, request?: RequestId, deadlineMs = 15_000): Promise<CommandResult> {
    return decodeResult(await this.call("cas", encodeMutation({ key, value, expectedVersion, request }), deadlineMs));
  }

  async get(key: Uint8Array, linearizable: boolean, deadlineMs = 15_000): Promise<KvGetResponse> {
    return decodeGetResponse(await this.call("get", encodeGet({ key, linearizable }), deadlineMs));
  }

  async status(deadlineMs = 5_000): Promise<KvStatus> {
    return JSON.parse((await this.call("status", Buffer.alloc(0), deadlineMs)).toString()) as KvStatus;
  }

  /** Digest of the replicated content at the node's applied index (for replica comparisons). */
  async checksum(deadlineMs = 15_000): Promise<{ appliedIndex: number; checksum: string }> {
    return JSON.parse((await this.call("checksum", Buffer.alloc(0), deadlineMs)).toString()) as { appliedIndex: number; checksum: string };
  }

  close(): void {
    this.client.close();
  }
}
