// The consoles of a node, wired to its replica: the authenticator, RBAC and audit log of the API
// behind the console WebSockets on the HTTPS server and ConsoleService on the gRPC server. The
// daemon calls addToGrpcServer before the gRPC server listens and attach once HTTPS is up. With
// `nodeClient`, consoles of VMs on other nodes are proxied to those nodes (proxy.ts).
import type * as grpc from "@grpc/grpc-js";
import { ApiError } from "../server/errors.ts";
import type { ServerType } from "@hono/node-server";
import type { Server } from "node:http";
import type { Logger } from "../../raft/types.ts";
import type { Replica } from "../../state/replica.ts";
import { appendAudit } from "../auth/audit.ts";
import { Authenticator } from "../auth/authenticator.ts";
import { authorize } from "../auth/rbac.ts";
import type { ConsoleDeps } from "./deps.ts";
import { addConsoleGrpcService } from "./grpc-console.ts";
import { openRemoteConsole } from "./proxy.ts";
import { ConsoleWsServer, type ConsoleWsOptions } from "./ws-server.ts";

export interface ConsoleMountOptions {
  replica: Replica;
  logger: Logger;
  nodeName: string;
  /** The host agent's resolver; without one every VM console is "not found" (shells still work). */
  resolveVm?: ConsoleDeps["resolveVm"];
  /** A client for another node's API port, authenticated as this node; undefined for an unknown node. */
  nodeClient?: (node: string) => grpc.Client | undefined;
  nowMs?: () => number;
  ws?: Partial<Pick<ConsoleWsOptions, "limits" | "maxSessions" | "maxFrameBytes" | "shell">>;
}

export interface ConsoleTransports {
  addToGrpcServer(server: grpc.Server): void;
  /** Serves console WebSockets on `server` (an HTTP/1.1 server: https.createServer); returns the function that closes them. */
  attach(server: ServerType): () => void;
}

export function consoleTransports(o: ConsoleMountOptions): ConsoleTransports {
  const authenticator = new Authenticator(o.replica);
  const deps: ConsoleDeps = {
    nodeName: o.nodeName,
    authenticate: (creds, opts) => authenticator.authenticate(creds, opts),
    authorize,
    resolveVm: o.resolveVm ?? (() => undefined),
    audit: (record) => appendAudit(o.replica, record),
    nowMs: o.nowMs ?? Date.now,
  };
  const nodeClient = o.nodeClient;
  if (nodeClient) {
    deps.openRemote = async (node, vm, kind, onBehalfOf) => {
      const client = nodeClient(node);
      if (!client) throw new ApiError("unavailable", `opening the ${kind} console of VM "${vm}": node ${node} is not known here`, { reason: "node_unreachable" });
      return openRemoteConsole(client, { node, vm, kind, onBehalfOf });
    };
  }
  return {
    addToGrpcServer: (server) => addConsoleGrpcService(server, { ...deps, logger: o.logger }),
    attach(server) {
      const wss = new ConsoleWsServer({ ...deps, ...o.ws, logger: o.logger });
      // serve() is typed for HTTP/2 servers too; the daemon's is https.createServer's, which upgrades.
      const http1 = server as Server;
      wss.attach(http1);
      return () => wss.close(http1);
    },
  };
}
