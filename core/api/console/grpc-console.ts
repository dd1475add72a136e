// trivet.v1.ConsoleService/Console: a VM's serial console as a gRPC bidirectional stream. The
// API's service framework (core/api/server) serves unary and server-streaming methods through one
// dispatcher shared with HTTP; a bidi stream has no HTTP form there, so rather than widen that
// framework this service is registered on grpc-js directly, with the same authenticator and RBAC
// (ConsoleDeps) and the same error trailers (grpcStatusObject). The first client message names
// the VM; then bytes flow both ways with grpc-js's own flow control (write() false → pause the
// socket until 'drain'; a full socket pauses the call).
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import net from "node:net";
import { ConsoleInputSchema, ConsoleOutputSchema, ConsoleService, type ConsoleInput } from "../gen/trivet/v1/console_pb.ts";
import { ApiError } from "../server/errors.ts";
import { grpcStatusObject } from "../server/grpc-adapter.ts";
import type { Logger } from "../../raft/types.ts";
import { auditConsole, resolveVmConsole, type ConsoleDeps } from "./deps.ts";

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
function firstMessage(call: Call, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new ApiError("invalid_argument", `no ConsoleInput.open within ${timeoutMs} ms`, { reason: "open_timeout" })), timeoutMs);
    call.once("data", (b: Buffer) => {
      clearTimeout(timer);
      call.pause();
      try {
        const msg = decodeInput(b);
        if (msg.input.case !== "open") throw new ApiError("invalid_argument", "the first ConsoleInput must be `open` naming the VM", { field: "open", reason: "open_first" });
        resolve(msg.input.value.vm);
      } catch (err) {
        reject(err);
      }
    });
  });
}

function pipe(call: Call, sock: net.Socket, idleTimeoutMs: number): void {
  let idle: NodeJS.Timeout | undefined;
  let done = false;
  const end = (err?: ApiError, graceful = false) => {
    if (done) return;
    done = true;
    clearTimeout(idle);
    // A client's half-close lets its last keys reach the guest; anything else drops them.
    if (graceful) sock.end();
    else sock.destroy();
    if (err) call.emit("error", grpcStatusObject(err));
    else call.end();
  };
  const touch = () => {
    clearTimeout(idle);
    idle = setTimeout(() => end(new ApiError("failed_precondition", `console idle for ${Math.round(idleTimeoutMs / 1000)} s`, { reason: "idle" })), idleTimeoutMs);
  };
  touch();
  sock.on("data", (d: Buffer) => {
    touch();
    if (!call.write(Buffer.from(toBinary(ConsoleOutputSchema, create(ConsoleOutputSchema, { data: d }))))) sock.pause();
  });
  call.on("drain", () => sock.resume());
  sock.on("drain", () => call.resume());
  call.on("data", (b: Buffer) => {
    touch();
    try {
      const msg = decodeInput(b);
      if (msg.input.case === "data" && !sock.write(msg.input.value)) call.pause();
    } catch (err) {
      end(err as ApiError);
    }
  });
  call.on("end", () => end(undefined, true));
  call.on("cancelled", () => end());
  sock.on("error", (err) => end(new ApiError("unavailable", `console socket: ${err.message}`, { reason: "console_socket" })));
  sock.on("close", () => end());
  call.resume();
}

function consoleHandler(opts: GrpcConsoleOptions): grpc.handleBidiStreamingCall<Buffer, Buffer> {
  return (call) => {
    call.on("error", () => {});
    void (async () => {
      const principal = opts.authenticate({ bearer: bearerOf(call.metadata) }, { mutation: true, nowMs: opts.nowMs() });
      const vm = await firstMessage(call, opts.openTimeoutMs ?? 10_000);
      const target = resolveVmConsole(opts, principal, vm, "serial");
      const sock = net.connect(target.socketPath);
      await new Promise<void>((resolve, reject) => {
        sock.once("connect", resolve);
        sock.once("error", (err) => reject(new ApiError("unavailable", `connecting to the serial console of VM "${vm}": ${err.message}`, { reason: "console_socket", cause: err })));
      });
      void auditConsole(opts, (m, f) => opts.logger.error(m, f), {
        principal: principal.username, action: "vm.console.serial", object: `vm/${vm}`, result: "ok", detail: { remote: call.getPeer(), transport: "grpc" },
      });
      pipe(call, sock, opts.idleTimeoutMs ?? 30 * 60_000);
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
