// A gRPC client of the one API, typed by the generated service descriptors: what the CLI and a
// joining node use. Errors come back as ApiError with the code, field and reason the server
// sent (trailer metadata), so the CLI can print exactly what was wrong.
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import * as grpc from "@grpc/grpc-js";
import { apiCodeOfGrpcStatus, ApiError } from "./server/errors.ts";

export const callTimeoutMsDefault = 30_000;

type In<M> = M extends { input: infer I extends DescMessage } ? MessageInitShape<I> : never;
type Out<M> = M extends { output: infer O extends DescMessage } ? MessageShape<O> : never;

export interface ApiClientOptions {
  /** An API token (trv_…) or a session id, sent as `authorization: Bearer`. */
  token?: string;
  linearizable?: boolean;
  callTimeoutMs?: number;
}

const passthrough = (b: Buffer) => b;

export class ApiClient {
  private readonly client: grpc.Client;

  constructor(readonly address: string, credentials: grpc.ChannelCredentials, private readonly opts: ApiClientOptions = {}) {
    this.client = new grpc.Client(address, credentials, { "grpc.max_receive_message_length": 16 * 1024 * 1024 });
  }

  private metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    if (this.opts.token) md.set("authorization", `Bearer ${this.opts.token}`);
    if (this.opts.linearizable) md.set("x-trivet-read", "linearizable");
    return md;
  }

  /** Calls a unary method: `client.call(ClusterService, "getStatus", {})`. */
  call<S extends GenServiceMethods, K extends keyof S & string>(service: GenService<S>, method: K, req: In<S[K]>): Promise<Out<S[K]>> {
    const m = service.method[method] as unknown as { name: string; input: DescMessage; output: DescMessage };
    const body = Buffer.from(toBinary(m.input, create(m.input, req as never)));
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(`/${service.typeName}/${m.name}`, passthrough, passthrough, body, this.metadata(),
        { deadline: Date.now() + (this.opts.callTimeoutMs ?? callTimeoutMsDefault) },
        (err, res) => (err ? reject(toApiError(err, this.address)) : resolve(fromBinary(m.output, res!) as Out<S[K]>)));
    });
  }

  /** Reads a server stream until it ends, the signal aborts, or `onMessage` returns false. */
  stream<S extends GenServiceMethods, K extends keyof S & string>(service: GenService<S>, method: K, req: In<S[K]>, onMessage: (msg: Out<S[K]>) => boolean | void, signal?: AbortSignal): Promise<void> {
    const m = service.method[method] as unknown as { name: string; input: DescMessage; output: DescMessage };
    const body = Buffer.from(toBinary(m.input, create(m.input, req as never)));
    return new Promise((resolve, reject) => {
      const call = this.client.makeServerStreamRequest(`/${service.typeName}/${m.name}`, passthrough, passthrough, body, this.metadata(), {});
      signal?.addEventListener("abort", () => call.cancel());
      call.on("data", (b: Buffer) => {
        if (onMessage(fromBinary(m.output, b) as Out<S[K]>) === false) call.cancel();
      });
      call.on("error", (err: grpc.ServiceError) => (err.code === grpc.status.CANCELLED ? resolve() : reject(toApiError(err, this.address))));
      call.on("end", () => resolve());
    });
  }

  close(): void {
    this.client.close();
  }
}

function toApiError(err: grpc.ServiceError, address: string): ApiError {
  const field = err.metadata?.get("trivet-error-field")[0];
  const reason = err.metadata?.get("trivet-error-reason")[0];
  const code = apiCodeOfGrpcStatus(err.code);
  const message = err.code === grpc.status.UNAVAILABLE ? `${address}: ${err.details || "unavailable"} (is the node running?)` : err.details;
  return new ApiError(code, message, { ...(field ? { field: String(field) } : {}), ...(reason ? { reason: String(reason) } : {}) });
}
