// Consoles of a VM on another node: the node the user reaches authenticates them and proxies to
// the VM's node as a node (ConsoleService over mutual TLS with its cluster certificate). The
// guest's boot marker arrives through a WebSocket opened on the other node, typed commands reach
// the guest, the gRPC console (`trivet vm console`) works the same way, and a caller without a
// node certificate cannot open a console "on behalf of" anyone, nor a node one of a VM elsewhere.
// The VNC display (RFB) is proxied the same way.
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openConsole } from "../../core/api/console/grpc-client.ts";
import { openRemoteConsole } from "../../core/api/console/proxy.ts";
import { ApiError } from "../../core/api/server/errors.ts";
import { readIdentity } from "../../core/cluster/daemon.ts";
import { channelCredentials } from "../../core/cluster/tls.ts";
import { guestReadyMarker } from "../guest/guest.ts";
import { DaemonCluster } from "../cluster/daemon-cluster.ts";
import { startTwoNodeGuest, twoNodeStartTimeoutMs, type TwoNodeGuest } from "../vm/two-node-guest.ts";
import { closed, connectWs, waitFor } from "./ws-client.ts";

const bootWaitMs = 120_000;
const socketWaitMs = 30_000;
const shellWaitMs = 20_000;

let g: TwoNodeGuest;

beforeAll(async () => {
  g = await startTwoNodeGuest("far1", { display: "vnc" });
}, twoNodeStartTimeoutMs * 2);

afterAll(async () => {
  await g?.close();
}, 60_000);

const httpsPort = (n: { http: string }) => Number(n.http.split(":")[1]);

describe("a console opened on one node for a VM on another", () => {
  it("shows the guest's marker and runs what is typed, over the WebSocket", async () => {
    expect(g.other.name).not.toBe(g.owner.name);
    // Opened as soon as the owner's serial socket exists, well before the TCG kernel is up.
    const c = await DaemonCluster.retry(async () => {
      const r = await connectWs(httpsPort(g.other), g.c.caPem, "/api/v1/console/serial/far1", { bearer: g.c.adminToken, protocols: ["binary"] });
      if (!r.ok) throw new Error(`console refused: ${r.status} ${r.body}`);
      return r;
    }, socketWaitMs, 50);
    await waitFor(c.received, guestReadyMarker, `guest boot through ${g.other.name}`, bootWaitMs);
    c.ws.send(Buffer.from("echo hi-$((40+2))\n"));
    await waitFor(c.received, "hi-42", "guest shell through the proxy", shellWaitMs);
    const end = closed(c.ws);
    c.ws.close();
    await end;
  }, bootWaitMs + socketWaitMs + shellWaitMs);

  it("proxies the VNC display: QEMU's RFB greeting arrives in binary frames on the other node", async () => {
    const c = await connectWs(httpsPort(g.other), g.c.caPem, "/api/v1/console/vnc/far1", { bearer: g.c.adminToken, protocols: ["binary"] });
    if (!c.ok) throw new Error(`VNC console refused: ${c.status} ${c.body}`);
    expect(c.ws.protocol).toBe("binary");
    await waitFor(c.received, "RFB 003.008\n", "RFB greeting through the proxy");
    // Bytes go the other way too: the client's version answer gets the security types.
    c.ws.send(Buffer.from("RFB 003.008\n"));
    const deadline = Date.now() + 10_000;
    while (c.received().length < 13 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(c.received().length).toBeGreaterThan(12);
    expect(c.received()[12]).toBeGreaterThan(0);
    c.ws.close();
  });

  it("serves `trivet vm console` (gRPC) the same way", async () => {
    const client = new grpc.Client(g.other.api, grpc.credentials.createSsl(Buffer.from(g.c.caPem)));
    const chunks: Buffer[] = [];
    // QEMU serves one client at a time: the WebSocket's proxy may still be letting go.
    const stream = await DaemonCluster.retry(async () => {
      const s = openConsole(client, "far1", { token: g.c.adminToken, onData: (d) => chunks.push(Buffer.from(d)) });
      s.write(Buffer.from("echo grpc-$((6*7))\n"));
      await waitFor(() => Buffer.concat(chunks), "grpc-42", "guest shell through gRPC", 3000);
      return s;
    }, shellWaitMs, 200);
    stream.close();
    await stream.done;
    client.close();
  }, shellWaitMs + 10_000);

  it("refuses a console on behalf of a user from a caller without a node certificate", async () => {
    const client = new grpc.Client(g.owner.api, grpc.credentials.createSsl(Buffer.from(g.c.caPem)));
    const err = await openRemoteConsole(client, { node: g.owner.name, vm: "far1", kind: "serial", onBehalfOf: "admin" }).then(() => undefined, (e: unknown) => e);
    client.close();
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe("permission_denied");
    expect((err as ApiError).reason).toBe("not_a_node");
  });

  it("accepts a node's request only for a VM of its own: a proxied console is never proxied again", async () => {
    // As node `other` (its own certificate), ask `other` itself for the VM that runs on `owner`.
    const creds = channelCredentials(readIdentity(g.other.dataDir));
    const client = new grpc.Client(g.other.api, creds);
    const err = await openRemoteConsole(client, { node: g.other.name, vm: "far1", kind: "serial", onBehalfOf: "admin" }).then(() => undefined, (e: unknown) => e);
    client.close();
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe("failed_precondition");
    expect((err as ApiError).reason).toBe("wrong_node");
  });
});
