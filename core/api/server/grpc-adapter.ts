// Serves the registered services over gRPC (@grpc/grpc-js): messages are the generated
// schemas' binary encoding, credentials come from metadata `authorization: Bearer <token>`,
// the read mode from `x-trivet-read`, and the applied index goes back as initial metadata
// `x-trivet-applied-index`. Errors become a gRPC status with trailers trivet-error-field and
// trivet-error-reason. Decoding happens inside the handler so a malformed message is an
// INVALID_ARGUMENT like any other bad request.
import { create, fromBinary, toBinary, type DescMessage } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { appliedIndexHeader, noSessionCookie, parseReadMode, readModeHeader, type CallInfo, type Dispatcher } from "./dispatch.ts";
import { ApiError, grpcStatusOf, toApiError } from "./errors.ts";
import type { RegisteredMethod } from "./service.ts";

const passthrough = (b: Buffer) => b;

function metadataValue(md: grpc.Metadata, key: string): string | undefined {
  const v = md.get(key)[0];
  return typeof v === "string" ? v : undefined;
}

function callInfo(md: grpc.Metadata, peer: string, signal: AbortSignal): CallInfo {
  const auth = metadataValue(md, "authorization");
  const bearer = auth && /^bearer\s+/i.test(auth) ? auth.replace(/^bearer\s+/i, "").trim() : undefined;
  return { credentials: { bearer }, readMode: parseReadMode(metadataValue(md, readModeHeader)), remoteAddress: peer, transport: "grpc", sessionCookie: noSessionCookie, signal };
}

/** The status object grpc-js sends for an ApiError. */
export function grpcStatusObject(err: unknown): grpc.ServerErrorResponse {
  const e = toApiError(err);
  const metadata = new grpc.Metadata();
  if (e.field) metadata.set("trivet-error-field", e.field);
  if (e.reason) metadata.set("trivet-error-reason", e.reason);
  if (e.retryAfterMs !== undefined) metadata.set("retry-after-ms", String(e.retryAfterMs));
  return Object.assign(new Error(e.message), { code: grpcStatusOf[e.code], details: e.message, metadata });
}

function decode(schema: DescMessage, bytes: Buffer): unknown {
  try {
    return fromBinary(schema, bytes);
  } catch (err) {
    throw new ApiError("invalid_argument", `decoding ${schema.typeName}: ${(err as Error).message}`, { reason: "malformed_message", cause: err });
  }
}

function unaryHandler(d: Dispatcher, m: RegisteredMethod): grpc.handleUnaryCall<Buffer, Buffer> {
  return (call, callback) => {
    const abort = new AbortController();
    call.on("cancelled", () => abort.abort());
    void (async () => {
      const { response, appliedIndex } = await d.unary(m, decode(m.desc.input, call.request), callInfo(call.metadata, call.getPeer(), abort.signal));
      const md = new grpc.Metadata();
      md.set(appliedIndexHeader, String(appliedIndex));
      call.sendMetadata(md);
      callback(null, Buffer.from(toBinary(m.desc.output, create(m.desc.output, response as never))));
    })().catch((err: unknown) => callback(grpcStatusObject(d.failed(m.action, err))));
  };
}

function streamHandler(d: Dispatcher, m: RegisteredMethod): grpc.handleServerStreamingCall<Buffer, Buffer> {
  return (call) => {
    const abort = new AbortController();
    call.on("cancelled", () => abort.abort());
    void (async () => {
      const stream = await d.stream(m, decode(m.desc.input, call.request), callInfo(call.metadata, call.getPeer(), abort.signal));
      for await (const msg of stream) {
        if (abort.signal.aborted) break;
        call.write(Buffer.from(toBinary(m.desc.output, create(m.desc.output, msg as never))));
      }
      call.end();
    })().catch((err: unknown) => {
      if (!abort.signal.aborted) call.emit("error", grpcStatusObject(d.failed(m.action, err)));
    });
  };
}

/** Adds every registered service of the dispatcher to a grpc-js server. */
export function addGrpcServices(server: grpc.Server, d: Dispatcher): void {
  for (const s of d.services) {
    const definition: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
    const impl: grpc.UntypedServiceImplementation = {};
    for (const m of s.methods.values()) {
      const streaming = m.desc.methodKind === "server_streaming";
      definition[m.desc.localName] = {
        path: `/${s.descriptor.typeName}/${m.desc.name}`,
        requestStream: false,
        responseStream: streaming,
        requestSerialize: passthrough,
        requestDeserialize: passthrough,
        responseSerialize: passthrough,
        responseDeserialize: passthrough,
      };
      impl[m.desc.localName] = streaming ? streamHandler(d, m) : unaryHandler(d, m);
    }
    server.addService(definition, impl);
  }
}
