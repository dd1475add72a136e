// Serves the registered services as JSON over HTTP(S) on hono, by the same dispatcher as gRPC.
// Convention (one route per method, like gRPC's own paths):
//   POST /api/v1/<Service>/<Method>   body: the request in proto3 JSON → 200 with the response
//   in proto3 JSON (default values included), header x-trivet-applied-index.
// Server-streaming methods (EventService.Watch) answer with Server-Sent Events: one `data:` line
// of proto3 JSON per message; an error after the stream began is an `event: error`. They are
// also reachable as GET /api/v1/<Service>/<Method>?request=<JSON> for the browser's EventSource.
// Credentials: `Authorization: Bearer <token>`, or the trivet_session cookie (HttpOnly, Secure,
// SameSite=Strict) plus the X-CSRF-Token header on mutations. Errors: the HTTP status of the
// code and {"error": {code, message, field, reason}}, with Retry-After on 429.
import { create, fromJson, toJson, type DescMessage, type JsonValue } from "@bufbuild/protobuf";
import type { Context } from "hono";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { streamSSE } from "hono/streaming";
import { appliedIndexHeader, parseReadMode, readModeHeader, type CallInfo, type Dispatcher } from "./dispatch.ts";
import { ApiError, httpStatusOf, toApiError } from "./errors.ts";
import type { RegisteredMethod } from "./service.ts";

export const sessionCookieName = "trivet_session";
export const csrfHeader = "x-csrf-token";
/** Bodies over this size are refused before parsing. */
export const requestBodyMaxBytes = 1024 * 1024;

const jsonWrite = { alwaysEmitImplicit: true } as const;

function callInfo(c: Context, signal: AbortSignal): CallInfo {
  const auth = c.req.header("authorization");
  const bearer = auth && /^bearer\s+/i.test(auth) ? auth.replace(/^bearer\s+/i, "").trim() : undefined;
  const addr = (c.env as { incoming?: { socket?: { remoteAddress?: string; remotePort?: number } } } | undefined)?.incoming?.socket;
  return {
    credentials: { bearer, sessionId: getCookie(c, sessionCookieName), csrfToken: c.req.header(csrfHeader) },
    readMode: parseReadMode(c.req.header(readModeHeader)),
    remoteAddress: addr?.remoteAddress ? `${addr.remoteAddress}:${addr.remotePort ?? 0}` : "unknown",
    transport: "http",
    signal,
    sessionCookie: {
      set: (id, expiresAtMs) => setCookie(c, sessionCookieName, id, { httpOnly: true, secure: true, sameSite: "Strict", path: "/", expires: new Date(expiresAtMs) }),
      clear: () => deleteCookie(c, sessionCookieName, { path: "/", secure: true }),
    },
  };
}

/** Parses proto3 JSON into a message; the error names the field when protobuf-es tells which. */
function decodeJson(schema: DescMessage, json: JsonValue): unknown {
  try {
    return fromJson(schema, json);
  } catch (err) {
    const msg = (err as Error).message;
    const field = /field [\w.]+\.(\w+) from JSON/.exec(msg)?.[1] ?? /key "([^"]+)" is unknown/.exec(msg)?.[1];
    throw new ApiError("invalid_argument", field ? `field "${field}": ${msg}` : `decoding ${schema.typeName}: ${msg}`, { field, reason: "malformed_json", cause: err });
  }
}

async function readBody(c: Context): Promise<JsonValue> {
  const text = await c.req.text();
  if (text.trim() === "") return {};
  try {
    return JSON.parse(text) as JsonValue;
  } catch (err) {
    throw new ApiError("invalid_argument", `request body is not JSON: ${(err as Error).message}`, { reason: "malformed_json", cause: err });
  }
}

function errorResponse(c: Context, err: unknown): Response {
  const e = toApiError(err);
  if (e.retryAfterMs !== undefined) c.header("retry-after", String(Math.max(1, Math.ceil(e.retryAfterMs / 1000))));
  return c.json({ error: e.toJSON() }, httpStatusOf[e.code]);
}

function sse(c: Context, d: Dispatcher, m: RegisteredMethod, request: () => Promise<JsonValue>): Response {
  return streamSSE(c, async (s) => {
    const abort = new AbortController();
    s.onAbort(() => abort.abort());
    try {
      const stream = await d.stream(m, decodeJson(m.desc.input, await request()), callInfo(c, abort.signal));
      for await (const msg of stream) {
        if (abort.signal.aborted) break;
        await s.writeSSE({ data: JSON.stringify(toJson(m.desc.output, create(m.desc.output, msg as never), jsonWrite)) });
      }
    } catch (err) {
      if (!abort.signal.aborted) await s.writeSSE({ event: "error", data: JSON.stringify({ error: d.failed(m.action, err).toJSON() }) });
    }
  });
}

/** A hono app serving every registered service of the dispatcher under /api/v1. */
export function httpApp(d: Dispatcher): Hono {
  const app = new Hono();
  const limit = bodyLimit({
    maxSize: requestBodyMaxBytes,
    onError: (c) => errorResponse(c, new ApiError("invalid_argument", `request body is over ${requestBodyMaxBytes} bytes`, { reason: "body_too_large" })),
  });
  const lookup = (c: Context): RegisteredMethod => {
    const m = d.find(c.req.param("service") ?? "", c.req.param("method") ?? "");
    if (!m) throw new ApiError("not_found", `no API method ${c.req.param("service")}/${c.req.param("method")} (POST /api/v1/<Service>/<Method>)`, { reason: "no_such_method" });
    return m;
  };
  app.post("/api/v1/:service/:method", limit, async (c) => {
    try {
      const m = lookup(c);
      if (m.desc.methodKind === "server_streaming") return sse(c, d, m, () => readBody(c));
      const req = decodeJson(m.desc.input, await readBody(c));
      const { response, appliedIndex } = await d.unary(m, req, callInfo(c, c.req.raw.signal));
      c.header(appliedIndexHeader, String(appliedIndex));
      return c.json(toJson(m.desc.output, create(m.desc.output, response as never), jsonWrite));
    } catch (err) {
      return errorResponse(c, d.failed(`${c.req.param("service")}.${c.req.param("method")}`, err));
    }
  });
  app.get("/api/v1/:service/:method", (c) => {
    try {
      const m = lookup(c);
      if (m.desc.methodKind !== "server_streaming") throw new ApiError("invalid_argument", `${m.action} is called with POST`, { reason: "method_not_allowed" });
      return sse(c, d, m, async () => {
        const q = c.req.query("request");
        if (!q) return {};
        try {
          return JSON.parse(q) as JsonValue;
        } catch (err) {
          throw new ApiError("invalid_argument", `query parameter "request" is not JSON: ${(err as Error).message}`, { field: "request", reason: "malformed_json" });
        }
      });
    } catch (err) {
      return errorResponse(c, err);
    }
  });
  return app;
}
