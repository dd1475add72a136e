// Assembles the API of a node: the auth services of this area plus any others (cluster, events,
// later VMs and storage), the authenticator, RBAC and the audit log, behind one dispatcher that
// both transports serve — addToGrpcServer for grpc-js and httpApp for hono.
import type * as grpc from "@grpc/grpc-js";
import type { Hono, MiddlewareHandler } from "hono";
import type { Logger } from "../../raft/types.ts";
import type { Replica } from "../../state/replica.ts";
import { appendAudit } from "../auth/audit.ts";
import { Authenticator } from "../auth/authenticator.ts";
import type { RandomBytes } from "../auth/credentials.ts";
import type { LoginThrottle } from "../auth/login-throttle.ts";
import type { Argon2Params } from "../auth/passwords.ts";
import { authorize } from "../auth/rbac.ts";
import { Dispatcher } from "../server/dispatch.ts";
import { addGrpcServices } from "../server/grpc-adapter.ts";
import { httpApp } from "../server/http-adapter.ts";
import type { RegisteredService } from "../server/service.ts";
import { auditService } from "./audit-service.ts";
import { authService } from "./auth-service.ts";
import { userService } from "./users-service.ts";

export interface ApiOptions {
  replica: Replica;
  logger: Logger;
  nowMs?: () => number;
  /** Services beyond auth, users and audit (ClusterService, EventService, …). */
  services?: readonly RegisteredService[];
  throttle?: LoginThrottle;
  randomBytes?: RandomBytes;
  argon2?: Argon2Params;
  /** Serves the web UI on the HTTPS app outside /api (core/api/server/ui-static.ts). */
  ui?: MiddlewareHandler;
}

export interface Api {
  dispatcher: Dispatcher;
  addToGrpcServer(server: grpc.Server): void;
  httpApp: Hono;
}

export function createApi(opts: ApiOptions): Api {
  const authenticator = new Authenticator(opts.replica);
  const services = [
    authService({ throttle: opts.throttle, randomBytes: opts.randomBytes }),
    userService({ argon2: opts.argon2, randomBytes: opts.randomBytes }),
    auditService(),
    ...(opts.services ?? []),
  ];
  const dispatcher = new Dispatcher(services, {
    replica: opts.replica,
    logger: opts.logger,
    nowMs: opts.nowMs ?? Date.now,
    authenticate: (creds, o) => authenticator.authenticate(creds, o),
    authorize,
    audit: (record) => appendAudit(opts.replica, record),
  });
  const app = httpApp(dispatcher);
  if (opts.ui) app.use("*", opts.ui);
  return { dispatcher, addToGrpcServer: (server) => addGrpcServices(server, dispatcher), httpApp: app };
}
