// What a console WebSocket upgrade request says, read before the upgrade is accepted: which
// console (the route), who is asking (credentials) and from where (Origin). Browsers cannot set
// headers on a WebSocket, so a browser sends its session cookie and puts the session's CSRF
// token in the Sec-WebSocket-Protocol list as "trivet-csrf.<csrf_token>", next to a real
// subprotocol ("binary" for noVNC, or "trivet.console"), which is the one the server selects.
// Non-browser clients send `authorization: Bearer <API token or session id>` instead.
import type { IncomingHttpHeaders } from "node:http";
import type { Credentials } from "../server/dispatch.ts";
import { ApiError } from "../server/errors.ts";
import { sessionCookieName } from "../server/http-adapter.ts";

export const consolePathPrefix = "/api/v1/console/";
export const csrfProtocolPrefix = "trivet-csrf.";

export type ConsoleRoute = { kind: "serial" | "vnc"; vm: string } | { kind: "shell"; node: string };

/** `/api/v1/console/{serial|vnc}/<vm>` or `/api/v1/console/shell/<node>`; undefined otherwise. */
export function parseConsoleRoute(pathname: string): ConsoleRoute | undefined {
  if (!pathname.startsWith(consolePathPrefix)) return undefined;
  const parts = pathname.slice(consolePathPrefix.length).split("/");
  if (parts.length !== 2 || !parts[1]) return undefined;
  let name: string;
  try {
    name = decodeURIComponent(parts[1]);
  } catch {
    return undefined;
  }
  if (parts[0] === "serial" || parts[0] === "vnc") return { kind: parts[0], vm: name };
  if (parts[0] === "shell") return { kind: "shell", node: name };
  return undefined;
}

export function offeredProtocols(headers: IncomingHttpHeaders): string[] {
  const raw = headers["sec-websocket-protocol"];
  return (raw ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "");
}

function cookie(headers: IncomingHttpHeaders, name: string): string | undefined {
  for (const part of (headers.cookie ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return undefined;
}

/** The credentials of an upgrade request; `viaCookie` when a browser session is what counts. */
export function upgradeCredentials(headers: IncomingHttpHeaders): { credentials: Credentials; viaCookie: boolean } {
  const auth = headers.authorization;
  if (auth && /^bearer\s+/i.test(auth)) return { credentials: { bearer: auth.replace(/^bearer\s+/i, "").trim() }, viaCookie: false };
  const sessionId = cookie(headers, sessionCookieName);
  const csrf = offeredProtocols(headers).find((p) => p.startsWith(csrfProtocolPrefix))?.slice(csrfProtocolPrefix.length);
  return { credentials: { sessionId, csrfToken: csrf }, viaCookie: sessionId !== undefined };
}

/**
 * A browser always sends Origin on a WebSocket; it must be this node's own address (the Host the
 * request was sent to), or another site's page could use the user's cookie. Clients with a bearer
 * header are not browsers, and may send none.
 */
export function checkOrigin(headers: IncomingHttpHeaders, viaCookie: boolean): void {
  const origin = headers.origin;
  if (origin === undefined) {
    if (viaCookie) throw new ApiError("permission_denied", "a console opened with a session cookie needs an Origin header", { reason: "origin_missing" });
    return;
  }
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    throw new ApiError("permission_denied", `Origin ${JSON.stringify(origin)} is not a URL`, { reason: "origin_mismatch" });
  }
  if (host !== headers.host) throw new ApiError("permission_denied", `Origin ${origin} is not this node (${headers.host ?? "no Host header"}); open the console from this node's own UI`, { reason: "origin_mismatch" });
}

/** The subprotocol to echo back: the first offered one that is not the CSRF carrier. */
export function selectProtocol(offered: Set<string>): string | false {
  for (const p of offered) if (!p.startsWith(csrfProtocolPrefix)) return p;
  return false;
}
