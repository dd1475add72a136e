// A node-like fixture for the console tests: a single-node Replica, the API (gRPC, insecure) and
// the real HTTPS server of the daemon (hono's serve with a cluster-CA certificate) with the
// console transports mounted as the daemon mounts them, users of each role, and a fake VM whose
// "serial console" is a unix socket that greets and echoes.
import { serve, type ServerType } from "@hono/node-server";
import * as grpc from "@grpc/grpc-js";
import fs from "node:fs";
import https from "node:https";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { bootstrapAdmin } from "../../core/api/auth/bootstrap.ts";
import { consoleTransports } from "../../core/api/console/mount.ts";
import type { BridgeLimits } from "../../core/api/console/bridge.ts";
import type { ConsoleKind, ConsoleTarget } from "../../core/api/console/deps.ts";
import { AuthService } from "../../core/api/gen/trivet/v1/auth_pb.ts";
import { UserService } from "../../core/api/gen/trivet/v1/users_pb.ts";
import { listenGrpc } from "../../core/api/grpc-listen.ts";
import { createApi } from "../../core/api/services/api.ts";
import { createClusterCa, createCsr, generateNodeKey, newSerial, signNodeCert } from "../../core/cluster/pki.ts";
import { httpsServerOptions, type TlsIdentity } from "../../core/cluster/tls.ts";
import { MemoryHub } from "../../core/raft/driver/memory-transport.ts";
import { Replica } from "../../core/state/replica.ts";
import { grpcClient, type ApiClient } from "../api/clients.ts";

export const fakeGreeting = "FAKE-SERIAL-READY\n";
const leaderWaitMs = 10_000;
const password = "console test password";

export interface Fixture {
  dir: string;
  caPem: string;
  httpsPort: number;
  grpcAddress: string;
  /** Bytes the fake serial server has received, all connections together. */
  serialReceived: () => Buffer;
  /** Makes the fake serial server send `bytes` on every open connection. */
  serialBlast: (bytes: Buffer) => void;
  tokens: Record<"admin" | "operator" | "auditor", string>;
  adminSession: { id: string; csrf: string };
  close(): Promise<void>;
}

async function identity(): Promise<TlsIdentity> {
  const ca = await createClusterCa({ clusterName: "consoles", nowMs: Date.now() });
  const { keyPem } = await generateNodeKey();
  const names = { nodeName: "n1", addresses: ["127.0.0.1"] };
  const csrPem = await createCsr({ ...names, keyPem });
  const certPem = await signNodeCert({ ...names, ca, csrPem, nowMs: Date.now(), serial: newSerial() });
  return { caPem: ca.certPem, certPem, keyPem };
}

function fakeSerial(socketPath: string) {
  const received: Buffer[] = [];
  const conns = new Set<net.Socket>();
  const server = net.createServer((c) => {
    conns.add(c);
    c.on("close", () => conns.delete(c));
    c.on("error", () => {});
    c.write(fakeGreeting);
    c.on("data", (d) => {
      received.push(d);
      c.write(d);
    });
  });
  server.listen(socketPath);
  return { server, conns, received };
}

async function loginAs(c: ApiClient, username: string, pw: string, kind: "CREDENTIAL_KIND_TOKEN" | "CREDENTIAL_KIND_SESSION") {
  const r = await c.call(AuthService, "Login", { username, password: pw, kind });
  if (!r.ok) throw new Error(`login ${username}: ${r.code} ${r.message}`);
  return r.body as { apiToken: string; sessionId: string; csrfToken: string };
}

/** `extraVms` adds VMs (serial sockets on node n1) to the resolver, e.g. a real guest; `extraVnc` VNC sockets. */
export async function startFixture(limits?: BridgeLimits, extraVms: Record<string, string> = {}, extraVnc: Record<string, string> = {}): Promise<Fixture> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "trivet-console-"));
  const replica = await Replica.open({ id: 1, dataDir: path.join(dir, "state"), transport: new MemoryHub().transport(1), initialMembers: new Map([[1, "n1"]]), host: { tickMs: 10 } });
  const deadline = Date.now() + leaderWaitMs;
  while (replica.host.leaderInfo().leader !== 1) {
    if (Date.now() > deadline) throw new Error(`no leader within ${leaderWaitMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
  await bootstrapAdmin(replica, "admin", password);
  const logger = { debug() {}, info() {}, warn() {}, error: (m: string, f?: unknown) => console.error(m, f) };
  const serial = fakeSerial(path.join(dir, "serial.sock"));
  const targets: Record<string, ConsoleTarget> = { web1: { socketPath: path.join(dir, "serial.sock"), node: "n1" }, far: { socketPath: "/nonexistent", node: "n2" } };
  for (const [vm, socketPath] of Object.entries(extraVms)) targets[vm] = { socketPath, node: "n1" };
  // web1 has a "VNC display" too (the same echo socket); the other VMs only a serial console.
  const vncTargets: Record<string, ConsoleTarget> = { web1: targets.web1! };
  for (const [vm, socketPath] of Object.entries(extraVnc)) vncTargets[vm] = { socketPath, node: "n1" };
  const resolveVm = (vm: string, kind: ConsoleKind) => (kind === "serial" ? targets[vm] : vncTargets[vm]);
  const api = createApi({ replica, logger });
  const consoles = consoleTransports({ replica, logger, nodeName: "n1", resolveVm, ws: { limits } });
  const grpcServer = new grpc.Server();
  api.addToGrpcServer(grpcServer);
  consoles.addToGrpcServer(grpcServer);
  const grpcAddress = `127.0.0.1:${await listenGrpc(grpcServer, "127.0.0.1:0", grpc.ServerCredentials.createInsecure())}`;
  const id = await identity();
  let httpServer: ServerType | undefined;
  const httpsPort = await new Promise<number>((resolve) => {
    httpServer = serve({ fetch: api.httpApp.fetch, hostname: "127.0.0.1", port: 0, createServer: https.createServer, serverOptions: httpsServerOptions(id) }, (info) => resolve(info.port));
  });
  const closeConsoles = consoles.attach(httpServer!);
  const client = grpcClient(grpcAddress);
  const adminLogin = await loginAs(client, "admin", password, "CREDENTIAL_KIND_TOKEN");
  for (const [name, role] of [["olive", "ROLE_OPERATOR"], ["audrey", "ROLE_AUDITOR"]] as const) {
    const r = await client.call(UserService, "CreateUser", { username: name, password, role }, { bearer: adminLogin.apiToken });
    if (!r.ok) throw new Error(`creating ${name}: ${r.message}`);
  }
  const session = await loginAs(client, "admin", password, "CREDENTIAL_KIND_SESSION");
  const tokens = { admin: adminLogin.apiToken, operator: (await loginAs(client, "olive", password, "CREDENTIAL_KIND_TOKEN")).apiToken, auditor: (await loginAs(client, "audrey", password, "CREDENTIAL_KIND_TOKEN")).apiToken };
  client.close();
  return {
    dir, caPem: id.caPem, httpsPort, grpcAddress, tokens, adminSession: { id: session.sessionId, csrf: session.csrfToken },
    serialReceived: () => Buffer.concat(serial.received),
    serialBlast: (bytes) => {
      for (const c of serial.conns) c.write(bytes);
    },
    async close() {
      closeConsoles();
      for (const c of serial.conns) c.destroy();
      serial.server.close();
      await new Promise<void>((r) => grpcServer.tryShutdown(() => r()));
      await new Promise<void>((r) => (httpServer ? httpServer.close(() => r()) : r()));
      await replica.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
