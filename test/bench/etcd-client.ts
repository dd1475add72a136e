// A minimal etcd v3 client for the Raft benchmark: KV/Put, KV/Range and Maintenance/Status
// over @grpc/grpc-js, with the few protobuf messages encoded by hand (protowire.ts) because
// the project carries no proto compiler or loader. Field numbers follow etcd's rpc.proto and
// kv.proto (etcd 3.4).
import * as grpc from "@grpc/grpc-js";
import { ProtoWriter, decodeFields, lastField, toInt64 } from "./protowire.ts";
import type { ProtoField } from "./protowire.ts";
import { grpcChannelOptions, loadRequestTimeoutMs } from "./target.ts";
import type { Writer } from "./target.ts";

const putMethod = "/etcdserverpb.KV/Put";
const rangeMethod = "/etcdserverpb.KV/Range";
const statusMethod = "/etcdserverpb.Maintenance/Status";

/** The load-run deadline shared with the Trivet target (target.ts). */
export const requestTimeoutMsDefault = loadRequestTimeoutMs;

export interface ResponseHeader {
  clusterId: bigint;
  memberId: bigint;
  revision: bigint;
  raftTerm: bigint;
}

export interface KeyValue {
  key: Buffer;
  createRevision: bigint;
  modRevision: bigint;
  version: bigint;
  value: Buffer;
  lease: bigint;
}

export interface RangeResponse {
  header: ResponseHeader;
  kvs: KeyValue[];
  more: boolean;
  count: bigint;
}

export interface StatusResponse {
  header: ResponseHeader;
  version: string;
  leader: bigint;
  raftIndex: bigint;
  raftTerm: bigint;
}

export class EtcdClientError extends Error {
  readonly code: "ETCD_RPC_FAILED" | "ETCD_BAD_RESPONSE";
  /** The gRPC status code when the server or the channel answered with one. */
  readonly grpcCode: number | undefined;
  constructor(code: EtcdClientError["code"], message: string, grpcCode?: number, cause?: unknown) {
    super(message, { cause });
    this.name = "EtcdClientError";
    this.code = code;
    this.grpcCode = grpcCode;
  }
}

/** PutRequest: key=1, value=2, lease=3, prev_kv=4. */
export function encodePutRequest(key: Buffer, value: Buffer, lease = 0n): Buffer {
  return new ProtoWriter().bytes(1, key).bytes(2, value).varint(3, lease).finish();
}

/** RangeRequest: key=1, range_end=2, limit=3 (a single-key lookup needs only the key). */
export function encodeRangeRequest(key: Buffer): Buffer {
  return new ProtoWriter().bytes(1, key).finish();
}

function varintOf(fields: readonly ProtoField[], field: number): bigint {
  return lastField(fields, field)?.varint ?? 0n;
}

/** ResponseHeader: cluster_id=1, member_id=2, revision=3, raft_term=4. */
export function decodeResponseHeader(buf: Buffer | undefined): ResponseHeader {
  const f = decodeFields(buf ?? Buffer.alloc(0));
  return { clusterId: varintOf(f, 1), memberId: varintOf(f, 2), revision: toInt64(varintOf(f, 3)), raftTerm: varintOf(f, 4) };
}

/** PutResponse: header=1, prev_kv=2 (not requested, so ignored). */
export function decodePutResponse(buf: Buffer): { header: ResponseHeader } {
  return { header: decodeResponseHeader(lastField(decodeFields(buf), 1)?.bytes) };
}

/** mvccpb.KeyValue: key=1, create_revision=2, mod_revision=3, version=4, value=5, lease=6. */
function decodeKeyValue(buf: Buffer): KeyValue {
  const f = decodeFields(buf);
  return {
    key: Buffer.from(lastField(f, 1)?.bytes ?? []),
    createRevision: toInt64(varintOf(f, 2)),
    modRevision: toInt64(varintOf(f, 3)),
    version: toInt64(varintOf(f, 4)),
    value: Buffer.from(lastField(f, 5)?.bytes ?? []),
    lease: toInt64(varintOf(f, 6)),
  };
}

/** RangeResponse: header=1, kvs=2 (repeated), more=3, count=4. */
export function decodeRangeResponse(buf: Buffer): RangeResponse {
  const f = decodeFields(buf);
  return {
    header: decodeResponseHeader(lastField(f, 1)?.bytes),
    kvs: f.filter((x) => x.field === 2).map((x) => decodeKeyValue(x.bytes)),
    more: varintOf(f, 3) !== 0n,
    count: toInt64(varintOf(f, 4)),
  };
}

/** StatusResponse: header=1, version=2, dbSize=3, leader=4, raftIndex=5, raftTerm=6. */
export function decodeStatusResponse(buf: Buffer): StatusResponse {
  const f = decodeFields(buf);
  return {
    header: decodeResponseHeader(lastField(f, 1)?.bytes),
    version: (lastField(f, 2)?.bytes ?? Buffer.alloc(0)).toString("utf8"),
    leader: varintOf(f, 4),
    raftIndex: varintOf(f, 5),
    raftTerm: varintOf(f, 6),
  };
}

const identity = (b: Buffer): Buffer => b;

/** Sends one pre-encoded unary call and decodes the answer. */
function unary<T>(client: grpc.Client, method: string, request: Buffer, decode: (b: Buffer) => T, timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const options = { deadline: Date.now() + timeoutMs };
    client.makeUnaryRequest(method, identity, identity, request, new grpc.Metadata(), options, (err, res) => {
      if (err) {
        reject(new EtcdClientError("ETCD_RPC_FAILED", `${what}: ${err.details || err.message} (gRPC status ${err.code})`, err.code, err));
        return;
      }
      try {
        resolve(decode(res ?? Buffer.alloc(0)));
      } catch (cause) {
        reject(new EtcdClientError("ETCD_BAD_RESPONSE", `${what}: undecodable response`, undefined, cause));
      }
    });
  });
}

export interface EtcdClientOptions {
  /** host:port of each member's client URL; the first is tried first. */
  endpoints: string[];
  /** HTTP/2 connections to the current endpoint, used round-robin (target.ts, channel policy). */
  channels: number;
  requestTimeoutMs?: number;
}

/**
 * Talks to one endpoint at a time over `channels` connections. A request that fails because
 * the endpoint is gone (UNAVAILABLE, deadline) moves the client on to the next endpoint, which
 * is how it finds a live member after a kill; etcd followers forward writes to the leader.
 */
export class EtcdClient {
  private readonly endpoints: string[];
  private readonly channels: number;
  private readonly requestTimeoutMs: number;
  private current = 0;
  private pool: grpc.Client[] = [];
  private next = 0;

  constructor(options: EtcdClientOptions) {
    if (options.endpoints.length === 0) throw new Error("creating etcd client: no endpoints given");
    this.endpoints = [...options.endpoints];
    this.channels = Math.max(1, options.channels);
    this.requestTimeoutMs = options.requestTimeoutMs ?? requestTimeoutMsDefault;
  }

  async put(key: Buffer, value: Buffer): Promise<{ header: ResponseHeader }> {
    return this.call(putMethod, encodePutRequest(key, value), decodePutResponse, "etcd put");
  }

  async range(key: Buffer): Promise<RangeResponse> {
    return this.call(rangeMethod, encodeRangeRequest(key), decodeRangeResponse, "etcd range");
  }

  /** Status of one particular member (not load-balanced): used to find the leader. */
  async status(endpoint: string, timeoutMs = 2_000): Promise<StatusResponse> {
    const client = new grpc.Client(endpoint, grpc.credentials.createInsecure(), grpcChannelOptions);
    try {
      return await unary(client, statusMethod, Buffer.alloc(0), decodeStatusResponse, timeoutMs, `etcd status of ${endpoint}`);
    } finally {
      client.close();
    }
  }

  close(): void {
    for (const c of this.pool) c.close();
    this.pool = [];
  }

  private async call<T>(method: string, req: Buffer, decode: (b: Buffer) => T, what: string): Promise<T> {
    const endpointIndex = this.current;
    if (this.pool.length === 0) {
      const target = this.endpoints[endpointIndex] as string;
      for (let i = 0; i < this.channels; i++) this.pool.push(new grpc.Client(target, grpc.credentials.createInsecure(), grpcChannelOptions));
    }
    const client = this.pool[this.next++ % this.pool.length] as grpc.Client;
    try {
      return await unary(client, method, req, decode, this.requestTimeoutMs, `${what} via ${this.endpoints[endpointIndex]}`);
    } catch (err) {
      const code = err instanceof EtcdClientError ? err.grpcCode : undefined;
      const endpointLost = code === grpc.status.UNAVAILABLE || code === grpc.status.DEADLINE_EXCEEDED;
      // Only the first failure seen on the current endpoint moves on; the other in-flight
      // requests that fail with it must not skip the next endpoint too.
      if (endpointLost && endpointIndex === this.current) {
        this.close();
        this.current = (this.current + 1) % this.endpoints.length;
      }
      throw err;
    }
  }
}

/** Worker-thread entry point (target.ts WriterSpec): a put-only writer. */
export async function createWriter(config: EtcdClientOptions): Promise<Writer> {
  const client = new EtcdClient(config);
  return {
    write: async (key, value) => {
      await client.put(key, value);
    },
    close: () => client.close(),
  };
}
