// The client side of ConsoleService/Console: opens the stream, names the VM, and exposes the
// console as bytes in and out. Used by `trivet vm console` and the tests. Errors arrive as
// ApiError with the code and reason the server sent in its trailers.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { ConsoleInputSchema, ConsoleOutputSchema, ConsoleService } from "../gen/trivet/v1/console_pb.ts";
import { apiCodeOfGrpcStatus, ApiError } from "../server/errors.ts";

export interface ConsoleStream {
  /** Returns false when the stream's buffer is full; wait for onDrain. */
  write(data: Uint8Array): boolean;
  onDrain(fn: () => void): void;
  /** Detaches (the VM keeps running) once what was written has been sent. */
  close(): void;
  /** Resolves when the server ends the console; rejects with ApiError on a failure. */
  done: Promise<void>;
}

const passthrough = (b: Buffer) => b;
/** How long a detach waits for the server to end the stream before cancelling it. */
export const detachGraceMs = 2000;

export function openConsole(client: grpc.Client, vm: string, opts: { token?: string; onData: (data: Uint8Array) => void }): ConsoleStream {
  const md = new grpc.Metadata();
  if (opts.token) md.set("authorization", `Bearer ${opts.token}`);
  const m = ConsoleService.method.console;
  const call = client.makeBidiStreamRequest(`/${ConsoleService.typeName}/${m.name}`, passthrough, passthrough, md, {});
  const encode = (input: Parameters<typeof create<typeof ConsoleInputSchema>>[1]) => Buffer.from(toBinary(ConsoleInputSchema, create(ConsoleInputSchema, input)));
  let closedByUs = false;
  const done = new Promise<void>((resolve, reject) => {
    call.on("data", (b: Buffer) => opts.onData(fromBinary(ConsoleOutputSchema, b).data));
    call.on("end", () => resolve());
    call.on("error", (err: grpc.ServiceError) => {
      if (closedByUs && err.code === grpc.status.CANCELLED) return resolve();
      const reason = err.metadata?.get("trivet-error-reason")[0];
      reject(new ApiError(apiCodeOfGrpcStatus(err.code), err.details || err.message, reason ? { reason: String(reason) } : {}));
    });
  });
  call.write(encode({ input: { case: "open", value: { vm } } }));
  return {
    write: (data) => call.write(encode({ input: { case: "data", value: data } })),
    onDrain: (fn) => call.on("drain", fn),
    close: () => {
      // A half-close lets the keys already written reach the console; cancel if the server lingers.
      closedByUs = true;
      call.end();
      setTimeout(() => call.cancel(), detachGraceMs).unref();
    },
    done,
  };
}
