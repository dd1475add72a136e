// The consoles as the daemon mounts them: a real `trivet serve` node (from `trivet init`), its
// HTTPS port serving the host shell WebSocket to the administrator, and its gRPC port serving
// ConsoleService to `trivet vm console` (which names a VM the node does not have).
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli, DaemonCluster, type DaemonNode } from "../cluster/daemon-cluster.ts";
import { closed, connectWs, waitFor } from "./ws-client.ts";

const startWaitMs = 60_000;
let cluster: DaemonCluster;
let node: DaemonNode;

beforeAll(async () => {
  cluster = new DaemonCluster();
  node = await cluster.allocate("n1");
  cluster.init(node);
  cluster.serve(node);
  await cluster.login(node);
}, startWaitMs + 30_000);

afterAll(async () => {
  if (node) await cluster.kill(node);
  if (cluster) fs.rmSync(cluster.dir, { recursive: true, force: true });
});

describe("consoles on a daemon", () => {
  it("serves the administrator a shell on the node over wss", async () => {
    const port = Number(node.http.split(":")[1]);
    const c = await connectWs(port, cluster.caPem, "/api/v1/console/shell/n1", { bearer: cluster.adminToken });
    if (!c.ok) throw new Error(`shell refused: ${c.status} ${c.body}`);
    c.ws.send(Buffer.from("echo hi-$((40+2))\n"));
    await waitFor(c.received, "hi-42", "shell output");
    const end = closed(c.ws);
    c.ws.send(Buffer.from("exit\n"));
    expect((await end).code).toBe(1000);
  });

  it("answers `trivet vm console` over gRPC with the API's error for an unknown VM", () => {
    const env = { TRIVET_SERVER: node.api, TRIVET_TOKEN: cluster.adminToken, TRIVET_CA_FILE: path.join(node.dataDir, "tls", "ca.crt") };
    const r = cli(["vm", "console", "nosuchvm"], env);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/VM "nosuchvm" does not exist/);
  });
});
