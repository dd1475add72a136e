// What `npm run bench:raft` needs from a system under test (Trivet or etcd), and the one
// client-connection policy both must use so that the comparison measures the servers,
// not two different client setups.

/** Writes one key; resolves only once the system has acknowledged it (durable on a quorum). */
export type WriteFn = (key: Buffer, value: Buffer) => Promise<void>;

/** A writer that owns connections and must be closed. */
export interface Writer {
  write: WriteFn;
  close(): void;
}

/**
 * How a load-generator worker thread builds its own writer: `module` (a file URL) exports
 * `createWriter(config): Promise<Writer>`, and `config` survives structured cloning.
 * Workers exist because one Node event loop can become the bottleneck (see load-workers.ts).
 */
export interface WriterSpec {
  module: string;
  config: unknown;
}

export interface BenchTarget {
  readonly name: string;
  /** Starts the three-node group and waits until it has a leader and accepts writes. */
  start(): Promise<void>;
  /** In-process writer, used for the failover measurement and single-thread load. */
  write: WriteFn;
  /** kill -9 of the current leader's process; resolves once the signal has been sent. */
  killLeader(): Promise<void>;
  /** A writer recipe for load-generator worker threads using `channels` connections. */
  writerSpec(channels: number): WriterSpec;
  /** Process ids of the servers, so the bench can report their CPU use. */
  pids(): number[];
  stop(): Promise<void>;
}

export interface BenchTargetOptions {
  /** Connections (HTTP/2 channels) of the in-process writer; see channelCountFor. */
  channels: number;
  /** Deadline of each write of the in-process writer (failover probing); see below. */
  requestTimeoutMs: number;
}

/**
 * Per-attempt deadline of the failover writer. A write that reaches a member while there is
 * no leader can hang until the server's own request timeout (7 s in etcd 3.4, where the
 * dropped proposal is never answered), which would measure that timeout instead of the
 * failover; with a short deadline the writer retries, so the failover time is exact to
 * within about this much.
 */
export const failoverAttemptTimeoutMs = 200;

/**
 * Channel policy: one HTTP/2 connection per `clientsPerChannel` concurrent clients, the
 * ratio of etcd's own documented benchmark (`benchmark --conns=100 --clients=1000`), with
 * requests spread round-robin over the channels. A single connection would serialise all
 * frames of 1000 clients through one socket; one connection per client would measure
 * connection overhead instead of consensus.
 */
export const clientsPerChannelDefault = 10;
export const channelsMax = 100;

export function channelCountFor(clients: number, clientsPerChannel = clientsPerChannelDefault): number {
  return Math.max(1, Math.min(channelsMax, Math.ceil(clients / clientsPerChannel)));
}

/**
 * grpc-js shares one subchannel (one TCP connection) between all clients with the same target
 * and options; a local subchannel pool per client is what makes N clients N connections.
 */
export const grpcChannelOptions = { "grpc.use_local_subchannel_pool": 1 } as const;

/**
 * Deadline of each write during load runs, for both systems: far above any healthy latency
 * (etcd's p99 at 1000 clients is well under 1 s here), so it only ends writes that are lost.
 */
export const loadRequestTimeoutMs = 10_000;

/** The benchmark's workload: 8-byte keys, 256-byte values (the numbers). */
export const keyBytes = 8;
export const valueBytes = 256;
