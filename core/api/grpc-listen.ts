// Binding a grpc-js server with the socket options Trivet needs. grpc-js sets TCP_NODELAY on
// the connections it opens as a client but not on those its server accepts, so a small
// response can sit in Nagle's buffer until the peer's delayed ACK (~40 ms on Linux) — which
// turns a sub-millisecond Raft round trip or unary reply into tens of milliseconds. grpc-js
// offers no option for it, so the accepted sockets are reached through the HTTP/2 servers it
// keeps (pinned grpc-js version; grpc-listen.test.ts fails loudly if that changes).
import type * as grpc from "@grpc/grpc-js";
import type { EventEmitter } from "node:events";
import type net from "node:net";

const STREAM_WINDOW_BYTES = 8 * 1024 * 1024;
const SESSION_WINDOW_BYTES = 32 * 1024 * 1024;

export class GrpcListenError extends Error {
  readonly code = "grpc_listen";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "GrpcListenError";
  }
}

/** Binds `server` to `address` (host:port, port 0 for any) and resolves with the bound port. */
export async function listenGrpc(server: grpc.Server, address: string, credentials: grpc.ServerCredentials): Promise<number> {
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(address, credentials, (err, p) => (err ? reject(new GrpcListenError(`listening on ${address}: ${err.message}`, { cause: err })) : resolve(p))),
  );
  tuneAcceptedConnections(server);
  return port;
}

/**
 * Applies TCP_NODELAY and the larger HTTP/2 windows to every HTTP/2 server `server` keeps —
 * bound ports and connection injectors alike (call it after creating either).
 */
export function tuneAcceptedConnections(server: grpc.Server): void {
  const http2Servers = (server as unknown as { http2Servers?: Map<EventEmitter, unknown> }).http2Servers;
  if (!(http2Servers instanceof Map)) throw new GrpcListenError("grpc-js internals changed: cannot set TCP_NODELAY on accepted connections (http2Servers not found)");
  for (const h2 of http2Servers.keys()) {
    if (tuned.has(h2)) continue;
    tuned.add(h2);
    h2.on("connection", (socket: net.Socket) => socket.setNoDelay(true));
    h2.on("secureConnection", (socket: net.Socket) => socket.setNoDelay(true));
    // HTTP/2's default 64 KiB windows throttle a long-lived stream (Raft appends) to one
    // window per round trip; peers here are trusted cluster members or bounded API calls.
    (h2 as unknown as { updateSettings(s: { initialWindowSize: number }): void }).updateSettings({ initialWindowSize: STREAM_WINDOW_BYTES });
    h2.on("session", (session: { setLocalWindowSize(n: number): void }) => session.setLocalWindowSize(SESSION_WINDOW_BYTES));
  }
}

const tuned = new WeakSet<EventEmitter>();
