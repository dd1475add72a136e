// Two clients of the API with one interface — one over gRPC (binary protobuf, metadata), one over
// HTTP (proto3 JSON, cookies, headers) — so the API tests run the same table of cases through
// both transports and compare what a user of each would see.
import { fromBinary, fromJson, toBinary, toJson, type DescMessage, type JsonValue } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import * as grpc from "@grpc/grpc-js";
import { apiCodeOfGrpcStatus, type ApiErrorCode } from "../../core/api/server/errors.ts";

export interface Creds {
  /** Sent as `authorization: Bearer` (an API token, or a session id for non-browser clients). */
  bearer?: string;
  /** HTTP only: the browser session cookie and (optionally) its CSRF token. */
  session?: { id: string; csrf?: string };
  linearizable?: boolean;
}

export type CallResult =
  | { ok: true; body: Record<string, unknown>; appliedIndex: number; headers: Record<string, string> }
  | { ok: false; code: ApiErrorCode; message: string; field?: string; reason?: string; status: number; headers: Record<string, string> };

export interface ApiClient {
  transport: "grpc" | "http";
  call(service: GenService<GenServiceMethods>, method: string, req: JsonValue, creds?: Creds): Promise<CallResult>;
  stream(service: GenService<GenServiceMethods>, method: string, req: JsonValue, creds?: Creds): Promise<{ ok: true; messages: JsonValue[] } | Extract<CallResult, { ok: false }>>;
  close(): void;
}

const callTimeoutMs = 20_000;

function methodOf(service: GenService<GenServiceMethods>, name: string) {
  const m = service.methods.find((x) => x.name === name);
  if (!m) throw new Error(`test: ${service.name} has no method ${name}`);
  return m;
}

export function grpcClient(address: string): ApiClient {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const md = (creds?: Creds) => {
    const m = new grpc.Metadata();
    if (creds?.bearer) m.set("authorization", `Bearer ${creds.bearer}`);
    if (creds?.linearizable) m.set("x-trivet-read", "linearizable");
    return m;
  };
  const encode = (schema: DescMessage, req: JsonValue) => Buffer.from(toBinary(schema, fromJson(schema, req)));
  const failure = (err: grpc.ServiceError): Extract<CallResult, { ok: false }> => ({
    ok: false, code: apiCodeOfGrpcStatus(err.code), message: err.details, status: err.code,
    field: err.metadata?.get("trivet-error-field")[0] as string | undefined, reason: err.metadata?.get("trivet-error-reason")[0] as string | undefined,
    headers: Object.fromEntries(Object.entries(err.metadata?.getMap() ?? {}).map(([k, v]) => [k, String(v)])),
  });
  return {
    transport: "grpc",
    call(service, method, req, creds) {
      const m = methodOf(service, method);
      return new Promise((resolve) => {
        let headers: Record<string, string> = {};
        const call = client.makeUnaryRequest(`/${service.typeName}/${m.name}`, (b: Buffer) => b, (b: Buffer) => b, encode(m.input, req), md(creds),
          { deadline: Date.now() + callTimeoutMs }, (err, res) => {
            if (err) return resolve(failure(err));
            const body = toJson(m.output, fromBinary(m.output, res!), { alwaysEmitImplicit: true }) as Record<string, unknown>;
            resolve({ ok: true, body, appliedIndex: Number(headers["x-trivet-applied-index"] ?? -1), headers });
          });
        call.on("metadata", (meta: grpc.Metadata) => (headers = Object.fromEntries(Object.entries(meta.getMap()).map(([k, v]) => [k, String(v)]))));
      });
    },
    stream(service, method, req, creds) {
      const m = methodOf(service, method);
      return new Promise((resolve) => {
        const messages: JsonValue[] = [];
        const call = client.makeServerStreamRequest(`/${service.typeName}/${m.name}`, (b: Buffer) => b, (b: Buffer) => b, encode(m.input, req), md(creds), { deadline: Date.now() + callTimeoutMs });
        call.on("data", (b: Buffer) => messages.push(toJson(m.output, fromBinary(m.output, b))));
        call.on("error", (err: grpc.ServiceError) => resolve(failure(err)));
        call.on("end", () => resolve({ ok: true, messages }));
      });
    },
    close: () => client.close(),
  };
}

export function httpClient(baseUrl: string): ApiClient {
  const headersOf = (creds?: Creds) => {
    const h: Record<string, string> = { "content-type": "application/json" };
    if (creds?.bearer) h.authorization = `Bearer ${creds.bearer}`;
    if (creds?.session) h.cookie = `trivet_session=${creds.session.id}`;
    if (creds?.session?.csrf) h["x-csrf-token"] = creds.session.csrf;
    if (creds?.linearizable) h["x-trivet-read"] = "linearizable";
    return h;
  };
  const post = (service: GenService<GenServiceMethods>, method: string, req: JsonValue, creds?: Creds) =>
    fetch(`${baseUrl}/api/v1/${service.name}/${method}`, { method: "POST", headers: headersOf(creds), body: JSON.stringify(req), signal: AbortSignal.timeout(callTimeoutMs) });
  const failure = async (res: Response): Promise<Extract<CallResult, { ok: false }>> => {
    const { error } = (await res.json()) as { error: { code: ApiErrorCode; message: string; field?: string; reason?: string } };
    return { ok: false, ...error, status: res.status, headers: Object.fromEntries(res.headers) };
  };
  return {
    transport: "http",
    async call(service, method, req, creds) {
      const res = await post(service, method, req, creds);
      if (!res.ok) return failure(res);
      return { ok: true, body: (await res.json()) as Record<string, unknown>, appliedIndex: Number(res.headers.get("x-trivet-applied-index") ?? -1), headers: Object.fromEntries(res.headers) };
    },
    async stream(service, method, req, creds) {
      const res = await post(service, method, req, creds);
      if (!res.ok) return failure(res);
      const messages: JsonValue[] = [];
      let event = "message";
      for (const line of (await res.text()).split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        if (!line.startsWith("data:")) continue;
        const data = JSON.parse(line.slice(5)) as JsonValue;
        if (event === "error") {
          const e = (data as { error: { code: ApiErrorCode; message: string; field?: string; reason?: string } }).error;
          return { ok: false, ...e, status: 200, headers: {} };
        }
        messages.push(data);
        event = "message";
      }
      return { ok: true, messages };
    },
    close() {},
  };
}
