// Consoles of VMs on other nodes. A user may open any VM's console (serial or VNC, WebSocket or
// gRPC) on any node; the node they reach authenticates and authorizes them, then opens the
// console on the VM's node through ConsoleService/Console on that node's API port, as a node:
// mutual TLS with its cluster certificate, and the user's name in "trivet-on-behalf-of" (for the
// owner's log; the owner does not check the user again). The owner accepts such a request only
// from a peer whose certificate verified against the cluster CA, and only for a VM of its own.
//
// Opening waits for the owner's response headers, which it sends once it has connected to the
// VM's socket: an unknown VM or a dead socket on the owner is an error of the open (a refused
// WebSocket upgrade, a gRPC status), not a console that opens and closes at once.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { ConsoleInputSchema, ConsoleOutputSchema, ConsoleService } from "../gen/trivet/v1/console_pb.ts";
import { apiCodeOfGrpcStatus, ApiError } from "../server/errors.ts";
import { peerNodeName } from "../../cluster/tls.ts";
import type { ByteBackend } from "./bridge.ts";
import type { ConsoleKind } from "./deps.ts";

export const onBehalfOfKey = "trivet-on-behalf-of";
/** How long the owner has to connect to the VM's console and answer. */
export const remoteOpenTimeoutMs = 5000;
/** After a graceful end, how long the owner has to finish before the stream is cancelled. */
export const remoteEndGraceMs = 2000;

const passthrough = (b: Buffer) => b;
const encode = (input: Parameters<typeof create<typeof ConsoleInputSchema>>[1]) => Buffer.from(toBinary(ConsoleInputSchema, create(ConsoleInputSchema, input)));

/** Who a proxied request is for, and which node sent it; undefined for a user's own request. */
export function proxiedCaller(call: grpc.ServerDuplexStream<Buffer, Buffer>): { user: string; node: string } | undefined {
  const user = call.metadata.get(onBehalfOfKey)[0];
  if (user === undefined) return undefined;
  const node = peerNodeName(call);
  if (node === null) throw new ApiError("permission_denied", `a console on behalf of ${JSON.stringify(String(user))} may be opened only by a cluster node (no verified node certificate)`, { reason: "not_a_node" });
  return { user: String(user), node };
}

function errorOf(err: grpc.ServiceError, what: string): ApiError {
  const reason = err.metadata?.get("trivet-error-reason")[0];
  return new ApiError(apiCodeOfGrpcStatus(err.code), `${what}: ${err.details || err.message}`, { reason: reason ? String(reason) : "node_unreachable" });
}

/** Opens the console of `vm` on the node behind `client`, as this node acting for `onBehalfOf`. */
export function openRemoteConsole(client: grpc.Client, o: { node: string; vm: string; kind: ConsoleKind; onBehalfOf: string; timeoutMs?: number }): Promise<ByteBackend> {
  const what = `opening the ${o.kind} console of VM "${o.vm}" on node ${o.node}`;
  const md = new grpc.Metadata();
  md.set(onBehalfOfKey, o.onBehalfOf);
  const m = ConsoleService.method.console;
  const call = client.makeBidiStreamRequest(`/${ConsoleService.typeName}/${m.name}`, passthrough, passthrough, md, {});
  let closing = false;
  // An end between the owner's answer and the caller's onClose (a WebSocket still upgrading) is kept for it.
  let endedEarly: { err?: grpc.ServiceError } | undefined;
  // Until the owner answers, an end is a failed open; afterwards, the end of the console.
  let onEnd: (err?: grpc.ServiceError) => void = () => {};
  call.on("error", (err: grpc.ServiceError) => onEnd(err));
  call.on("end", () => onEnd());
  call.write(encode({ input: { case: "open", value: { vm: o.vm, kind: o.kind } } }));
  const backend: ByteBackend = {
    write: (d) => call.write(encode({ input: { case: "data", value: d } })),
    onData: (fn) => call.on("data", (b: Buffer) => fn(Buffer.from(fromBinary(ConsoleOutputSchema, b).data))),
    onDrain: (fn) => call.on("drain", fn),
    onClose: (fn) => {
      onEnd = (err) => fn(err && !(closing && err.code === grpc.status.CANCELLED) ? errorOf(err, `console on node ${o.node}`).message : undefined);
      if (endedEarly) onEnd(endedEarly.err);
    },
    pause: () => call.pause(),
    resume: () => call.resume(),
    close: () => {
      closing = true;
      call.cancel();
    },
    end: () => {
      closing = true;
      call.end();
      setTimeout(() => call.cancel(), remoteEndGraceMs).unref();
    },
  };
  const timeoutMs = o.timeoutMs ?? remoteOpenTimeoutMs;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      onEnd = () => {};
      backend.close();
      reject(new ApiError("unavailable", `${what}: no answer within ${timeoutMs} ms`, { reason: "node_unreachable" }));
    }, timeoutMs);
    onEnd = (err) => {
      clearTimeout(timer);
      onEnd = () => {};
      // A refusal from the owner keeps its own code (not_found, failed_precondition, …).
      reject(err ? errorOf(err, what) : new ApiError("unavailable", `${what}: the node ended the console at once`, { reason: "node_unreachable" }));
    };
    call.once("metadata", () => {
      clearTimeout(timer);
      onEnd = (err) => (endedEarly = { err });
      resolve(backend);
    });
  });
}
