// Integration test of the benchmark's etcd harness against the real etcd 3.4 binary: the
// cluster starts and serves writes through the hand-written client, a kill -9 of the leader
// yields a new leader that accepts writes, the killed member rejoins, stop() cleans up.
import { existsSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { EtcdClient } from "./etcd-client.ts";
import { EtcdCluster, etcdBinaryDefault } from "./etcd-cluster.ts";

const hasEtcd = existsSync(etcdBinaryDefault);

describe.skipIf(!hasEtcd)("EtcdCluster", () => {
  let cluster: EtcdCluster | undefined;
  let client: EtcdClient | undefined;

  afterAll(async () => {
    client?.close();
    await cluster?.stop();
  });

  it("starts three members that agree on a leader and store what is written", async () => {
    cluster = await EtcdCluster.start();
    expect(new Set(cluster.endpoints).size).toBe(3);
    expect(cluster.pids()).toHaveLength(3);
    const leader = await cluster.leaderEndpoint();
    expect(cluster.endpoints).toContain(leader);
    client = new EtcdClient({ endpoints: [leader], channels: 2 });
    const put = await client.put(Buffer.from("bench-key"), Buffer.from("v1"));
    const got = await client.range(Buffer.from("bench-key"));
    expect(got.kvs.map((kv) => kv.value.toString())).toEqual(["v1"]);
    expect(got.kvs[0]?.modRevision).toBe(put.header.revision);
  });

  it("elects a new leader after kill -9 of the old one, which accepts writes and rejoins", async () => {
    if (!cluster) throw new Error("cluster did not start");
    const oldLeader = await cluster.leaderEndpoint();
    const killed = await cluster.killLeader();
    const newLeader = await cluster.leaderEndpoint();
    expect(newLeader).not.toBe(oldLeader);
    const survivor = new EtcdClient({ endpoints: [newLeader], channels: 1 });
    try {
      await survivor.put(Buffer.from("after-kill"), Buffer.from("v2"));
      await cluster.restart(killed);
      expect(cluster.pids()).toHaveLength(3);
      const restarted = cluster.endpoints[cluster.memberNames().indexOf(killed)] as string;
      const status = await survivor.status(restarted);
      expect(status.leader).not.toBe(0n);
    } finally {
      survivor.close();
    }
  });
});
