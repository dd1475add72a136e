// The node-to-node port (7444): one TLS listener that requires a client certificate from the
// cluster CA and hands each verified connection to the protocol its client chose by ALPN —
// "h2" to the gRPC server (Raft), "trivet-repl/1" to the storage replication server. One port
// and one mutual-TLS policy for all node-to-node traffic; a connection that offers neither
// protocol, or no certificate, never reaches a handler.
import net from "node:net";
import tls from "node:tls";
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "../raft/types.ts";
import { tuneAcceptedConnections } from "../api/grpc-listen.ts";
import { ClusterError } from "./errors.ts";
import { hostOf } from "./node-config.ts";
import { chainOf, type TlsIdentity } from "./tls.ts";

export const alpnGrpc = "h2";
export const alpnReplication = "trivet-repl/1";
export const peerHandshakeTimeoutMs = 10_000;

/** Handles one replication connection; `peer` is the CN of the verified client certificate. */
export type ReplicationHandler = (socket: tls.TLSSocket, peer: string) => void;

export interface PeerListenerOptions {
  identity: TlsIdentity;
  logger: Logger;
}

export class PeerListener {
  private server?: tls.Server;
  private injector?: grpc.ConnectionInjector;
  private replication?: ReplicationHandler;
  private readonly sockets = new Set<tls.TLSSocket>();
  port = 0;

  constructor(private readonly opts: PeerListenerOptions) {}

  /** The gRPC server that gets the "h2" connections (call before listen). */
  attachGrpc(server: grpc.Server): void {
    this.injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    tuneAcceptedConnections(server);
  }

  /** Who gets "trivet-repl/1" connections; until set, they are closed. */
  onReplication(handler: ReplicationHandler): void {
    this.replication = handler;
  }

  async listen(address: string): Promise<number> {
    const port = portOf(address);
    const host = hostOf(address);
    const id = this.opts.identity;
    const server = tls.createServer({
      ca: id.caPem, cert: chainOf(id), key: id.keyPem, requestCert: true, rejectUnauthorized: true,
      ALPNProtocols: [alpnGrpc, alpnReplication], handshakeTimeout: peerHandshakeTimeoutMs,
    });
    server.on("secureConnection", (socket) => this.dispatch(socket));
    server.on("tlsClientError", (err, socket) => {
      this.opts.logger.debug("peer TLS handshake failed", { remote: socket.remoteAddress, error: err.message });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", (err) => reject(new ClusterError("peer_listen", `listening on ${address}: ${err.message}`, { cause: err })));
      server.listen(port, host, () => resolve());
    });
    this.port = (server.address() as net.AddressInfo).port;
    return this.port;
  }

  private dispatch(socket: tls.TLSSocket): void {
    socket.setNoDelay(true);
    const peer = (socket.getPeerCertificate()?.subject?.CN as string | undefined) ?? "";
    if (socket.alpnProtocol === alpnGrpc && this.injector) {
      this.track(socket);
      this.injector.injectConnection(socket);
      return;
    }
    if (socket.alpnProtocol === alpnReplication && this.replication) {
      this.track(socket);
      this.replication(socket, peer);
      return;
    }
    this.opts.logger.debug("peer connection without a known protocol", { peer, alpn: String(socket.alpnProtocol) });
    socket.destroy();
  }

  private track(socket: tls.TLSSocket): void {
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
  }

  async close(): Promise<void> {
    this.injector?.destroy();
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** Opens a mutual-TLS replication connection to a peer's node-to-node port. */
export function connectReplication(identity: TlsIdentity, address: string, timeoutMs: number): Promise<tls.TLSSocket> {
  let port: number;
  try {
    port = portOf(address);
  } catch (err) {
    return Promise.reject(err);
  }
  const host = hostOf(address);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host, port, ca: identity.caPem, cert: chainOf(identity), key: identity.keyPem,
      ALPNProtocols: [alpnReplication], servername: net.isIP(host) ? undefined : host,
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new ClusterError("tls_connect", `replication connection to ${address}: no TLS handshake within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once("secureConnect", () => {
      clearTimeout(timer);
      if (socket.alpnProtocol !== alpnReplication) {
        socket.destroy();
        reject(new ClusterError("tls_connect", `replication connection to ${address}: the peer does not speak ${alpnReplication}`));
        return;
      }
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once("error", (err) => {
      clearTimeout(timer);
      reject(new ClusterError("tls_connect", `replication connection to ${address}: ${err.message}`, { cause: err }));
    });
  });
}

function portOf(address: string): number {
  const m = /:(\d+)$/.exec(address);
  if (!m) throw new ClusterError("invalid_argument", `peer address "${address}" is not host:port`);
  return Number(m[1]);
}
