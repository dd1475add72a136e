// Live figures of a running guest, read on another node than the one it runs on: the API node
// fetches them from the owner (PeerService/VmStats over mutual TLS) and shows them in `vm get`
// and `trivet vm list` (only nodes may ask a node for them); when the owner does not answer, the
// figures are unknown, not stale.
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readIdentity } from "../../core/cluster/daemon.ts";
import { channelCredentials } from "../../core/cluster/tls.ts";
import { fetchNodeStats } from "../../core/host/vm-stats-peer.ts";
import { cli, DaemonCluster } from "../cluster/daemon-cluster.ts";
import { startTwoNodeGuest, twoNodeStartTimeoutMs, type TwoNodeGuest } from "./two-node-guest.ts";

/** A sample every 2 s (statsSampleMs); allow a loaded machine some more. */
const statsWaitMs = 30_000;
const mib = 1024 * 1024;

let g: TwoNodeGuest;

beforeAll(async () => {
  g = await startTwoNodeGuest("stats1");
}, twoNodeStartTimeoutMs * 2);

afterAll(async () => {
  await g?.close();
}, 60_000);

describe("live VM figures across nodes", () => {
  it("shows CPU, memory and uptime of a guest on another node in vm get and vm list", async () => {
    const v = await DaemonCluster.retry(async () => {
      const vm = await g.get(g.other);
      if (!vm.status?.statsKnown) throw new Error(`no figures yet from ${g.owner.name}`);
      return vm;
    }, statsWaitMs);
    const s = v.status!;
    // A TCG guest booting a kernel keeps at least part of a CPU busy, and QEMU maps real memory.
    expect(s.cpuPercent).toBeGreaterThan(0);
    expect(Number(s.memoryRssBytes)).toBeGreaterThan(10 * mib);
    expect(Number(s.guestMemoryBytes)).toBe(256 * mib);
    expect(Number(s.uptimeMs)).toBeGreaterThan(0);
    console.log(`VM stats1 on ${g.owner.name}, read on ${g.other.name}: cpu ${s.cpuPercent.toFixed(1)} %, rss ${Math.round(Number(s.memoryRssBytes) / mib)} MiB, uptime ${s.uptimeMs} ms`);

    const env = { TRIVET_SERVER: g.other.api, TRIVET_TOKEN: g.c.adminToken, TRIVET_CA_FILE: path.join(g.other.dataDir, "tls", "ca.crt") };
    const list = cli(["vm", "list"], env);
    expect(list.code, list.stderr).toBe(0);
    const [header, row] = list.stdout.trim().split("\n");
    expect(header).toMatch(/CPU%\s+MEM/);
    expect(row).toMatch(/^stats1\s.*\s\d+\.\d%\s+\d+M\/256M$/);
  }, statsWaitMs + 60_000);

  it("serves a node's figures to other nodes only", async () => {
    const asNode = new grpc.Client(g.owner.api, channelCredentials(readIdentity(g.other.dataDir)));
    const figures = await fetchNodeStats(asNode, 5000);
    asNode.close();
    expect(figures.map((f) => f.vmId)).toEqual([g.vm.id]);
    const asUser = new grpc.Client(g.owner.api, grpc.credentials.createSsl(Buffer.from(g.c.caPem)));
    const err = await fetchNodeStats(asUser, 5000).then(() => undefined, (e: grpc.ServiceError) => e);
    asUser.close();
    expect(err?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(err?.details).toMatch(/only cluster nodes/);
  });

  it("shows the figures as unknown when the owner does not answer", async () => {
    // Killing the owner's daemon leaves its guest running (it is not the daemon's child group).
    await g.c.kill(g.owner);
    const v = await DaemonCluster.retry(async () => {
      const vm = await g.get(g.other);
      if (vm.status?.statsKnown) throw new Error("figures still known");
      return vm;
    }, statsWaitMs);
    expect(v.status?.state).toBe("running");
    expect(v.status?.cpuPercent).toBe(0);
    const env = { TRIVET_SERVER: g.other.api, TRIVET_TOKEN: g.c.adminToken, TRIVET_CA_FILE: path.join(g.other.dataDir, "tls", "ca.crt") };
    const list = cli(["vm", "list"], env);
    expect(list.stdout.trim().split("\n")[1]).toMatch(/^stats1\s.*\s\?\s+\?$/);
  }, statsWaitMs + 60_000);
});
