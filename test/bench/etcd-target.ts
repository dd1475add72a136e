// etcd as a benchmark target (target.ts BenchTarget): a three-member cluster from
// etcd-cluster.ts driven through the minimal client of etcd-client.ts. Writes go to the
// leader first (as etcd's own benchmark does with --endpoints set to the leader); the other
// members follow in the endpoint list so the client can move on after the leader dies.
import { EtcdClient } from "./etcd-client.ts";
import type { EtcdClientOptions } from "./etcd-client.ts";
import { EtcdCluster } from "./etcd-cluster.ts";
import type { BenchTarget, BenchTargetOptions, WriterSpec } from "./target.ts";

export class EtcdTargetError extends Error {
  readonly code = "ETCD_TARGET_NOT_STARTED";
  constructor(message: string) {
    super(message);
    this.name = "EtcdTargetError";
  }
}

export function createEtcdTarget(options: BenchTargetOptions): BenchTarget {
  let cluster: EtcdCluster | undefined;
  let client: EtcdClient | undefined;
  let endpoints: string[] = [];

  const started = (what: string): { cluster: EtcdCluster; client: EtcdClient } => {
    if (!cluster || !client) throw new EtcdTargetError(`${what}: the etcd target has not been started`);
    return { cluster, client };
  };

  return {
    name: "etcd",
    async start() {
      cluster = await EtcdCluster.start();
      const leader = await cluster.leaderEndpoint();
      endpoints = [leader, ...cluster.endpoints.filter((e) => e !== leader)];
      client = new EtcdClient({ endpoints, channels: options.channels, requestTimeoutMs: options.requestTimeoutMs });
      await client.put(Buffer.from("bench-ready"), Buffer.from("1"));
    },
    write: async (key, value) => {
      await started("writing to etcd").client.put(key, value);
    },
    async killLeader() {
      await started("killing the etcd leader").cluster.killLeader();
    },
    writerSpec(channels: number): WriterSpec {
      const config: EtcdClientOptions = { endpoints, channels };
      return { module: new URL("./etcd-client.ts", import.meta.url).href, config };
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
