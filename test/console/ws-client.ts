// Test helpers for console WebSockets: connect with given credentials and see either an open
// socket or the HTTP refusal, and read until an expected text arrives (bounded).
import WebSocket from "ws";

export interface WsAuth {
  bearer?: string;
  session?: { id: string; csrf?: string };
  origin?: string;
  protocols?: string[];
}

export type WsResult = { ok: true; ws: WebSocket; received: () => Buffer } | { ok: false; status: number; body: string };

export const wsWaitMs = 10_000;

export function connectWs(port: number, caPem: string, pathname: string, auth: WsAuth): Promise<WsResult> {
  const headers: Record<string, string> = {};
  if (auth.bearer) headers.authorization = `Bearer ${auth.bearer}`;
  if (auth.session) headers.cookie = `trivet_session=${auth.session.id}`;
  const protocols = [...(auth.protocols ?? []), ...(auth.session?.csrf ? [`trivet-csrf.${auth.session.csrf}`] : [])];
  const ws = new WebSocket(`wss://127.0.0.1:${port}${pathname}`, protocols, { ca: caPem, headers, ...(auth.origin ? { origin: auth.origin } : {}) });
  const chunks: Buffer[] = [];
  ws.on("message", (d: Buffer, isBinary) => isBinary && chunks.push(d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer to the upgrade of ${pathname} within ${wsWaitMs} ms`)), wsWaitMs);
    ws.on("open", () => {
      clearTimeout(timer);
      resolve({ ok: true, ws, received: () => Buffer.concat(chunks) });
    });
    ws.on("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => {
        clearTimeout(timer);
        resolve({ ok: false, status: res.statusCode ?? 0, body });
      });
    });
    ws.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Polls `read` until it contains `text`. */
export async function waitFor(read: () => Buffer, text: string, what: string, timeoutMs = wsWaitMs): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (!read().toString("latin1").includes(text)) {
    if (Date.now() > deadline) throw new Error(`${what}: no ${JSON.stringify(text)} within ${timeoutMs} ms; got ${JSON.stringify(read().toString("latin1").slice(-400))}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return read().toString("latin1");
}

export function closed(ws: WebSocket, timeoutMs = wsWaitMs): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`websocket not closed within ${timeoutMs} ms`)), timeoutMs);
    ws.on("close", (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString() });
    });
  });
}
