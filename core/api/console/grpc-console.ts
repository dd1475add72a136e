// trivet.v1.ConsoleService/Console: a VM's serial console as a gRPC bidirectional stream. The
// API's service framework (core/api/server) serves unary and server-streaming methods through one
// dispatcher shared with HTTP; a bidi stream has no HTTP form there, so rather than widen that
// framework this service is registered on grpc-js directly, with the same authenticator and RBAC
// (ConsoleDeps) and the same error trailers (grpcStatusObject). The first client message names
// the VM (and the console: serial by default, or vnc); then bytes flow both ways with grpc-js's own
// flow control (write() false → pause the socket until 'drain'; a full socket pauses the call).
// A VM on another node is reached through that node (proxy.ts); a request another node makes on
// a user's behalf is accepted from a cluster node certificate only, for this node's VMs only.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { ConsoleInputSchema, ConsoleOutputSchema, ConsoleService, type ConsoleInput } from "../gen/trivet/v1/console_pb.ts";
import { ApiError } from "../server/errors.ts";
import { grpcStatusObject } from "../server/grpc-adapter.ts";
import type { Logger } from "../../raft/types.ts";
import { connectUnixSocket, type ByteBackend } from "./bridge.ts";
import { auditConsole, resolveProxiedConsole, resolveVmConsole, type ConsoleDeps, type ConsoleKind } from "./deps.ts";
import { proxiedCaller } from "./proxy.ts";

export interface GrpcConsoleOptions extends ConsoleDeps {
  logger: Logger;
  /** How long the client has to send its first (open) message. */
  openTimeoutMs?: number;
  /** No bytes either way for this long ends the stream. */
  idleTimeoutMs?: number;
}

type Call = grpc.ServerDuplexStream<Buffer, Buffer>;
const passthrough = (b: Buffer) => b;

function bearerOf(md: grpc.Metadata): string | undefined {
  const v = md.get("authorization")[0];
  return typeof v === "string" && /^bearer\s+/i.test(v) ? v.replace(/^bearer\s+/i, "").trim() : undefined;
}

function decodeInput(b: Buffer): ConsoleInput {
  try {
    return fromBinary(ConsoleInputSchema, b);
  } catch (err) {
    throw new ApiError("invalid_argument", `decoding trivet.v1.ConsoleInput: ${(err as Error).message}`, { reason: "malformed_message", cause: err });
  }
}

/** Waits for the first message, which must be `open`. */
function firstMessage(call: Call, timeoutMs: number): Promise<{ vm: string; kind: ConsoleKind }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new ApiError("invalid_argument", `no ConsoleInput.open within ${timeoutMs} ms`, { reason: "open_timeout" })), timeoutMs);
    call.once("data", (b: Buffer) => {
      clearTimeout(timer);
      call.pause();
      try {
        const msg = decodeInput(b);
        if (msg.input.case !== "open") throw new ApiError("invalid_argument", "the first ConsoleInput must be `open` naming the VM", { field: "open", reason: "open_first" });
        const kind = msg.input.value.kind || "serial";
        if (kind !== "serial" && kind !== "vnc") throw new ApiError("invalid_argument", `ConsoleOpen.kind must be serial or vnc (got ${JSON.stringify(kind)})`, { field: "open.kind", reason: "bad_kind" });
        resolve({ vm: msg.input.value.vm, kind });
      } catch (err) {
        reject(err);
      }
    });
  });
}

function pipe(call: Call, be: ByteBackend, idleTimeoutMs: number): void {
  let idle: NodeJS.Timeout | undefined;
  let done = false;
  const end = (err?: ApiError, graceful = false) => {
    if (done) return;
    done = true;
    clearTimeout(idle);
    // A client's half-close lets its last keys reach the guest; anything else drops them.
    if (graceful) (be.end ?? be.close)();
    else be.close();
    if (err) call.emit("error", grpcStatusObject(err));
    else call.end();
  };
  const touch = () => {
    clearTimeout(idle);
    idle = setTimeout(() => end(new ApiError("failed_precondition", `console idle for ${Math.round(idleTimeoutMs / 1000)} s`, { reason: "idle" })), idleTimeoutMs);
  };
  touch();
  be.onData((d: Buffer) => {
    touch();
    if (!call.write(Buffer.from(toBinary(ConsoleOutputSchema, create(ConsoleOutputSchema, { data: d }))))) be.pause();
  });
  call.on("drain", () => be.resume());
  be.onDrain(() => call.resume());
  call.on("data", (b: Buffer) => {
    touch();
    try {
      const msg = decodeInput(b);
      if (msg.input.case === "data" && !be.write(Buffer.from(msg.input.value))) call.pause();
    } catch (err) {
      end(err as ApiError);
    }
  });
  call.on("end", () => end(undefined, true));
  call.on("cancelled", () => end());
  be.onClose((reason) => end(reason ? new ApiError("unavailable", reason, { reason: "console_socket" }) : undefined));
  call.resume();
}

/** Opens the console the first message names: here, or on the VM's node for a user of this node. */
async function openBackend(opts: GrpcConsoleOptions, call: Call): Promise<{ backend: ByteBackend; vm: string; kind: ConsoleKind; user: string; proxied: boolean }> {
  const proxied = proxiedCaller(call);
  const principal = proxied ? undefined : opts.authenticate({ bearer: bearerOf(call.metadata) }, { mutation: true, nowMs: opts.nowMs() });
  const { vm, kind } = await firstMessage(call, opts.openTimeoutMs ?? 10_000);
  const what = `connecting to the ${kind} console of VM "${vm}"`;
  if (proxied) {
    const target = resolveProxiedConsole(opts, vm, kind, proxied.node);
    opts.logger.info("console opened for another node", { vm, kind, node: proxied.node, user: proxied.user });
    return { backend: await connectUnixSocket(target.socketPath, what), vm, kind, user: proxied.user, proxied: true };
  }
  const target = resolveVmConsole(opts, principal!, vm, kind);
  const backend = target.node === opts.nodeName ? await connectUnixSocket(target.socketPath, what) : await opts.openRemote!(target.node, vm, kind, principal!.username);
  return { backend, vm, kind, user: principal!.username, proxied: false };
}

function consoleHandler(opts: GrpcConsoleOptions): grpc.handleBidiStreamingCall<Buffer, Buffer> {
  return (call) => {
    call.on("error", () => {});
    void (async () => {
      const { backend, vm, kind, user, proxied } = await openBackend(opts, call);
      // The response headers tell a proxying node that the console is open (proxy.ts).
      call.sendMetadata(new grpc.Metadata());
      // The node that proxies audits the user's attach; the owner only logs it.
      if (!proxied) {
        void auditConsole(opts, (m, f) => opts.logger.error(m, f), {
          principal: user, action: `vm.console.${kind}`, object: `vm/${vm}`, result: "ok", detail: { remote: call.getPeer(), transport: "grpc" },
        });
      }
      pipe(call, backend, opts.idleTimeoutMs ?? 30 * 60_000);
    })().catch((err: unknown) => call.emit("error", grpcStatusObject(err)));
  };
}

/** Registers ConsoleService on a grpc-js server (before it starts serving). */
export function addConsoleGrpcService(server: grpc.Server, opts: GrpcConsoleOptions): void {
  const m = ConsoleService.method.console;
  const definition: grpc.ServiceDefinition = {
    [m.localName]: {
      path: `/${ConsoleService.typeName}/${m.name}`, requestStream: true, responseStream: true,
      requestSerialize: passthrough, requestDeserialize: passthrough, responseSerialize: passthrough, responseDeserialize: passthrough,
    },
  };
  server.addService(definition, { [m.localName]: consoleHandler(opts) });
}
