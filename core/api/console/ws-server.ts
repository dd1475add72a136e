// Console WebSockets on the node's HTTPS server: it handles the server's `upgrade` events (hono
// serves ordinary requests; the `ws` package only frames the upgraded sockets). Routes:
//   GET /api/v1/console/serial/<vm>   a VM's serial console       (permission vm.console)
//   GET /api/v1/console/vnc/<vm>      a VM's VNC display (noVNC)  (permission vm.console)
//   GET /api/v1/console/shell/<node>  a login shell on the node   (permission host.shell)
// Authentication, Origin and permission are checked before the upgrade: a refusal is a plain
// HTTP response (401, 403, 404, 412) with the API's JSON error body, never an open socket.
// A VM on another node is reached through that node (proxy.ts), opened before the upgrade so
// that the owner's refusal is this response too. Frames are binary both ways (what noVNC
// expects for VNC), and the subprotocol the client offers ("binary", "trivet.console") is echoed.
import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import type { Logger } from "../../raft/types.ts";
import { httpStatusOf, toApiError, ApiError } from "../server/errors.ts";
import type { Principal } from "../server/service.ts";
import { attachUnixSocket, bridge, bridgeLimitsDefault, closeCodes, type BridgeLimits } from "./bridge.ts";
import { auditConsole, consolePermissions, resolveVmConsole, type ConsoleDeps } from "./deps.ts";
import { shellBackend, type ShellOptions } from "./shell.ts";
import { checkOrigin, consolePathPrefix, parseConsoleRoute, selectProtocol, upgradeCredentials, type ConsoleRoute } from "./upgrade-auth.ts";

export interface ConsoleWsOptions extends ConsoleDeps {
  logger: Logger;
  limits?: BridgeLimits;
  /** Consoles open at once on this node; more are refused with 429. */
  maxSessions?: number;
  /** Largest frame accepted from a client. */
  maxFrameBytes?: number;
  shell?: ShellOptions;
}

const statusText: Record<number, string> = { 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 412: "Precondition Failed", 429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable" };

function refuse(socket: Duplex, err: ApiError): void {
  const status = httpStatusOf[err.code];
  const body = JSON.stringify({ error: err.toJSON() });
  socket.end(`HTTP/1.1 ${status} ${statusText[status] ?? "Error"}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

export class ConsoleWsServer {
  private readonly wss: WebSocketServer;
  private readonly open = new Set<WebSocket>();
  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head);

  constructor(private readonly opts: ConsoleWsOptions) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxFrameBytes ?? 64 * 1024, handleProtocols: selectProtocol, perMessageDeflate: false });
  }

  /** Starts handling upgrades on `server` (an https.Server from @hono/node-server's serve). */
  attach(server: Server): void {
    server.on("upgrade", this.onUpgrade);
  }

  /** Closes every open console (1001) and stops accepting new ones on `server`. */
  close(server?: Server): void {
    server?.off("upgrade", this.onUpgrade);
    for (const ws of this.open) ws.close(closeCodes.goingAway, "node shutting down");
    this.wss.close();
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on("error", () => socket.destroy());
    const url = new URL(req.url ?? "/", "https://localhost");
    const route = parseConsoleRoute(url.pathname);
    if (!route) {
      const hint = url.pathname.startsWith(consolePathPrefix) ? "; consoles are /api/v1/console/{serial,vnc}/<vm> and /api/v1/console/shell/<node>" : "";
      return refuse(socket, new ApiError("not_found", `no WebSocket endpoint at ${url.pathname}${hint}`, { reason: "no_route" }));
    }
    void this.admit(req, route).then(
      ({ principal, start, abandon }) => {
        let opened = false;
        // A handshake that fails after admit must not leave a remote console open.
        socket.once("close", () => !opened && abandon?.());
        this.wss.handleUpgrade(req, socket, head, (ws) => {
          opened = true;
          this.opened(ws, req, route, principal, start);
        });
      },
      (err: unknown) => {
        const e = toApiError(err);
        if (e.code === "internal") this.opts.logger.error("console upgrade failed", { path: url.pathname, error: String(e.cause ?? e) });
        refuse(socket, e);
      },
    );
  }

  /** Everything that may refuse the console, before the upgrade; returns how to start it. */
  private async admit(req: IncomingMessage, route: ConsoleRoute): Promise<{ principal: Principal; start: (ws: WebSocket) => Promise<void>; abandon?: () => void }> {
    const { credentials, viaCookie } = upgradeCredentials(req.headers);
    const principal = this.opts.authenticate(credentials, { mutation: true, nowMs: this.opts.nowMs() });
    checkOrigin(req.headers, viaCookie);
    if (this.open.size >= (this.opts.maxSessions ?? 64)) throw new ApiError("resource_exhausted", `this node already serves ${this.open.size} consoles; close one first`, { reason: "too_many_consoles" });
    const limits = this.opts.limits ?? bridgeLimitsDefault;
    if (route.kind === "shell") {
      this.opts.authorize(principal, consolePermissions.shell, `node/${route.node}`);
      if (route.node !== this.opts.nodeName) throw new ApiError("failed_precondition", `opening a shell on node ${route.node}: this is node ${this.opts.nodeName}; connect to that node`, { reason: "wrong_node" });
      // Spawned only once the socket is open, so a failed handshake leaves no shell behind;
      // the socket is paused meanwhile so no keystroke is lost.
      return {
        principal,
        start: async (ws) => {
          ws.pause();
          const backend = await shellBackend(this.opts.shell);
          bridge(ws, backend, limits);
          ws.resume();
        },
      };
    }
    const target = resolveVmConsole(this.opts, principal, route.vm, route.kind);
    if (target.node !== this.opts.nodeName) {
      const backend = await this.opts.openRemote!(target.node, route.vm, route.kind, principal.username);
      return { principal, start: async (ws) => bridge(ws, backend, limits), abandon: () => backend.close() };
    }
    return { principal, start: async (ws) => attachUnixSocket(ws, target.socketPath, limits) };
  }

  private opened(ws: WebSocket, req: IncomingMessage, route: ConsoleRoute, principal: Principal, start: (ws: WebSocket) => Promise<void>): void {
    this.open.add(ws);
    ws.on("close", () => this.open.delete(ws));
    const object = route.kind === "shell" ? `node/${route.node}` : `vm/${route.vm}`;
    void auditConsole(this.opts, (m, f) => this.opts.logger.error(m, f), {
      principal: principal.username, action: route.kind === "shell" ? "host.shell" : `vm.console.${route.kind}`, object, result: "ok",
      detail: { remote: req.socket.remoteAddress ?? "", transport: "websocket" },
    });
    start(ws).catch((err: unknown) => ws.close(closeCodes.backendFailed, String((err as Error).message).slice(0, 120)));
  }
}
