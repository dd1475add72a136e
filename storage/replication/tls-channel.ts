// The replication channel over mutual TLS with cluster certificates (ALPN "trivet-repl/1").
// connectReplicaTls is what a ReplicaClient's `connect` calls in production. On a node the peer
// listener (port 7444) accepts both gRPC ("h2") and replication: it hands sockets whose
// negotiated protocol is isReplicationSocket() to ReplicaServer.serve. listenReplicationTls is a
// dedicated listener for tests and benchmarks.
import net from "node:net";
import tls from "node:tls";
import { chainOf, type TlsIdentity } from "../../core/cluster/tls.ts";
import { ReplicationError } from "./errors.ts";
import { alpnProtocol } from "./protocol.ts";
import type { ReplicaServer } from "./replica-server.ts";

export const tlsConnectTimeoutMsDefault = 5_000;

export function isReplicationSocket(socket: tls.TLSSocket): boolean {
  return socket.alpnProtocol === alpnProtocol && socket.authorized;
}

export interface ConnectReplicaOptions {
  host: string;
  port: number;
  identity: TlsIdentity;
  timeoutMs?: number;
}

/** Opens a mutually authenticated TLS connection that negotiated the replication protocol. */
export function connectReplicaTls(o: ConnectReplicaOptions): Promise<tls.TLSSocket> {
  const timeoutMs = o.timeoutMs ?? tlsConnectTimeoutMsDefault;
  const where = `${o.host}:${o.port}`;
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: o.host,
      port: o.port,
      ca: o.identity.caPem,
      cert: chainOf(o.identity),
      key: o.identity.keyPem,
      ALPNProtocols: [alpnProtocol],
      minVersion: "TLSv1.3",
      ...(net.isIP(o.host) ? {} : { servername: o.host }),
    });
    const fail = (err: Error): void => {
      socket.destroy();
      reject(err instanceof ReplicationError ? err : new ReplicationError("closed", `connecting to replica ${where}: ${err.message}`, { cause: err }));
    };
    const timer = setTimeout(() => fail(new ReplicationError("timeout", `connecting to replica ${where}: no TLS handshake within ${timeoutMs} ms`)), timeoutMs);
    socket.once("error", (err) => {
      clearTimeout(timer);
      fail(err);
    });
    socket.once("secureConnect", () => {
      clearTimeout(timer);
      if (socket.alpnProtocol !== alpnProtocol) {
        fail(new ReplicationError("protocol", `connecting to replica ${where}: the peer does not speak ${alpnProtocol}`));
        return;
      }
      socket.setNoDelay(true);
      resolve(socket);
    });
  });
}

/** A TLS listener serving only replication (mutual TLS required). Resolves once listening. */
export function listenReplicationTls(server: ReplicaServer, identity: TlsIdentity, port = 0, host = "127.0.0.1"): Promise<tls.Server> {
  const listener = tls.createServer({
    cert: chainOf(identity),
    key: identity.keyPem,
    ca: identity.caPem,
    requestCert: true,
    rejectUnauthorized: true,
    ALPNProtocols: [alpnProtocol],
    minVersion: "TLSv1.3",
  });
  listener.on("secureConnection", (socket: tls.TLSSocket) => {
    if (!isReplicationSocket(socket)) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    server.serve(socket);
  });
  listener.on("tlsClientError", () => undefined);
  return new Promise((resolve, reject) => {
    listener.once("error", reject);
    listener.listen(port, host, () => {
      listener.off("error", reject);
      resolve(listener);
    });
  });
}
