// The shared node-to-node port with real TLS on 127.0.0.1: gRPC and replication connections
// reach their handlers by ALPN, and strangers (no certificate, another cluster's certificate)
// reach neither.
import tls from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { connectReplication, PeerListener } from "./peer-listener.ts";
import { createClusterCa, createCsr, generateNodeKey, newSerial, signNodeCert, type ClusterCa } from "./pki.ts";
import { channelCredentials, type TlsIdentity } from "./tls.ts";

const connectTimeoutMs = 5000;
const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const passthrough = (b: Buffer) => b;
const echoService: grpc.ServiceDefinition = {
  echo: { path: "/test.Echo/Echo", requestStream: false, responseStream: false, requestSerialize: passthrough, requestDeserialize: passthrough, responseSerialize: passthrough, responseDeserialize: passthrough },
};
const EchoClient = grpc.makeGenericClientConstructor(echoService, "Echo");
type Echo = grpc.Client & { echo(req: Buffer, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Buffer) => void): void };

async function nodeIdentity(ca: ClusterCa, nodeName: string): Promise<TlsIdentity> {
  const { keyPem } = await generateNodeKey();
  const addresses = ["127.0.0.1"];
  const csrPem = await createCsr({ keyPem, nodeName, addresses });
  const certPem = await signNodeCert({ ca, csrPem, nodeName, addresses, nowMs: Date.now(), serial: newSerial() });
  return { caPem: ca.certPem, certPem, keyPem };
}

let serverId: TlsIdentity;
let clientId: TlsIdentity;
let strangerId: TlsIdentity;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  const ca = await createClusterCa({ clusterName: "c1", nowMs: Date.now() });
  const other = await createClusterCa({ clusterName: "c2", nowMs: Date.now() });
  serverId = await nodeIdentity(ca, "n1");
  clientId = await nodeIdentity(ca, "n2");
  strangerId = await nodeIdentity(other, "n9");
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function startListener(): Promise<{ address: string; replicated: string[] }> {
  const listener = new PeerListener({ identity: serverId, logger: silent });
  const server = new grpc.Server();
  server.addService(echoService, { echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.concat([Buffer.from("echo:"), call.request])) });
  listener.attachGrpc(server);
  const replicated: string[] = [];
  listener.onReplication((socket, peer) => {
    replicated.push(peer);
    socket.on("data", (d: Buffer) => socket.write(Buffer.concat([Buffer.from(`${peer}:`), d])));
  });
  const port = await listener.listen("127.0.0.1:0");
  cleanups.push(() => listener.close(), () => server.forceShutdown());
  return { address: `127.0.0.1:${port}`, replicated };
}

describe("the node-to-node port", () => {
  it("serves gRPC to a cluster node over mutual TLS", async () => {
    const { address } = await startListener();
    const client = new EchoClient(address, channelCredentials(clientId)) as unknown as Echo;
    cleanups.push(() => client.close());
    const reply = await new Promise<Buffer>((resolve, reject) =>
      client.echo(Buffer.from("ping"), { deadline: Date.now() + connectTimeoutMs }, (err, res) => (err ? reject(err) : resolve(res!))),
    );
    expect(reply.toString()).toBe("echo:ping");
  });

  it("hands replication connections to the replication handler with the peer's node name", async () => {
    const { address, replicated } = await startListener();
    const socket = await connectReplication(clientId, address, connectTimeoutMs);
    cleanups.push(() => void socket.destroy());
    const reply = new Promise<string>((resolve) => socket.once("data", (d: Buffer) => resolve(d.toString())));
    socket.write("hello");
    expect(await reply).toBe("n2:hello");
    expect(replicated).toEqual(["n2"]);
  });

  it("refuses a client without a certificate and one from another cluster", async () => {
    const { address, replicated } = await startListener();
    await expect(connectReplication(strangerId, address, connectTimeoutMs)).rejects.toMatchObject({ code: "tls_connect" });
    const port = Number(address.split(":")[1]);
    const anonymous = await new Promise<string>((resolve) => {
      const s = tls.connect({ host: "127.0.0.1", port, ca: serverId.caPem, ALPNProtocols: ["trivet-repl/1"] });
      s.on("error", (err) => resolve(`error: ${err.message}`));
      s.on("data", () => resolve("data"));
      s.on("secureConnect", () => s.write("x"));
      s.on("close", () => resolve("closed"));
    });
    expect(anonymous).not.toBe("data");
    expect(replicated).toEqual([]);
  });
});
