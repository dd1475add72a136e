// Trivet as a benchmark target (target.ts BenchTarget): a three-process Raft group of
// `trivet raft serve` (test/cluster/raft-processes.ts, real fsync) driven through the Kv gRPC
// service. Same client policy as the etcd target: writes go to the leader first, over
// `channels` HTTP/2 connections used round-robin, and move on to the next member when the
// current one is lost; followers would forward writes to the leader as etcd's do.
import * as grpc from "@grpc/grpc-js";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { KvClient } from "../../core/api/kv-service.ts";
import { RaftProcessCluster } from "../cluster/raft-processes.ts";
import { grpcChannelOptions } from "./target.ts";
import type { BenchTarget, BenchTargetOptions, Writer, WriterSpec } from "./target.ts";

const requestTimeoutMsDefault = 5_000;
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export interface TrivetClientOptions {
  endpoints: string[];
  channels: number;
  requestTimeoutMs?: number;
}

/** Put-only client over a pool of connections to one member at a time. */
export class TrivetBenchClient {
  private current = 0;
  private pool: KvClient[] = [];
  private next = 0;

  constructor(private readonly options: TrivetClientOptions) {
    if (options.endpoints.length === 0) throw new Error("creating Trivet bench client: no endpoints given");
  }

  async put(key: Buffer, value: Buffer): Promise<void> {
    const endpointIndex = this.current;
    if (this.pool.length === 0) {
      for (let i = 0; i < Math.max(1, this.options.channels); i++) this.pool.push(new KvClient(this.options.endpoints[endpointIndex]!, grpcChannelOptions));
    }
    const client = this.pool[this.next++ % this.pool.length]!;
    try {
      const r = await client.put(key, value, undefined, this.options.requestTimeoutMs ?? requestTimeoutMsDefault);
      if (!r.ok) throw new Error(`put refused: ${r.message}`);
    } catch (err) {
      const code = (err as { code?: number }).code;
      if ((code === grpc.status.UNAVAILABLE || code === grpc.status.DEADLINE_EXCEEDED) && endpointIndex === this.current) {
        this.close();
        this.current = (this.current + 1) % this.options.endpoints.length;
      }
      throw err;
    }
  }

  close(): void {
    for (const c of this.pool) c.close();
    this.pool = [];
  }
}

/** Worker-thread entry point (target.ts WriterSpec). */
export async function createWriter(config: TrivetClientOptions): Promise<Writer> {
  const client = new TrivetBenchClient(config);
  return { write: (key, value) => client.put(key, value), close: () => client.close() };
}

export function createTrivetTarget(options: BenchTargetOptions): BenchTarget {
  let cluster: RaftProcessCluster | undefined;
  let client: TrivetBenchClient | undefined;
  let endpoints: string[] = [];
  // The built binary when there is one (what users run), else the source through tsx.
  const binary = fs.existsSync(path.join(repoRoot, "dist/trivet")) && !process.env.BENCH_FROM_SOURCE ? path.join(repoRoot, "dist/trivet") : undefined;

  const started = (what: string) => {
    if (!cluster || !client) throw new Error(`${what}: the Trivet target has not been started`);
    return { cluster, client };
  };

  return {
    name: "trivet",
    async start() {
      cluster = await RaftProcessCluster.start({ size: 3, binary, logLevel: "warn" });
      const leader = cluster.nodes.get(await cluster.waitForLeader())!;
      endpoints = [leader.apiAddress, ...[...cluster.nodes.values()].filter((n) => n !== leader).map((n) => n.apiAddress)];
      client = new TrivetBenchClient({ endpoints, channels: options.channels, requestTimeoutMs: options.requestTimeoutMs });
      await client.put(Buffer.from("bench-ready"), Buffer.from("1"));
    },
    write: (key, value) => started("writing to Trivet").client.put(key, value),
    async killLeader() {
      const c = started("killing the Trivet leader").cluster;
      await c.kill(await c.waitForLeader());
    },
    writerSpec(channels: number): WriterSpec {
      const config: TrivetClientOptions = { endpoints, channels };
      return { module: new URL("./trivet-target.ts", import.meta.url).href, config };
    },
    pids: () => cluster?.pids() ?? [],
    async stop() {
      client?.close();
      await cluster?.stop();
      client = undefined;
      cluster = undefined;
    },
  };
}
