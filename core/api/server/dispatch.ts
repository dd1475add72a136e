// The request pipeline both transports share, so that the gRPC and the HTTP adapter cannot
// differ in what they check: authenticate → authorize → validate → (linearizable read barrier)
// → handler → audit. Adapters only translate their wire format to a CallInfo and back.
import type { Logger } from "../../raft/types.ts";
import type { ReadMode, Replica } from "../../state/replica.ts";
import { ApiError, toApiError } from "./errors.ts";
import { PUBLIC, type HandlerContext, type Principal, type RegisteredMethod, type RegisteredService, type SessionCookieSink } from "./service.ts";

/** Credentials as the transport carried them; which one counts is the authenticator's rule. */
export interface Credentials {
  /** From `authorization: Bearer <token>`. */
  bearer?: string;
  /** From the trivet_session cookie (HTTP only). */
  sessionId?: string;
  /** From the X-CSRF-Token header (HTTP only). */
  csrfToken?: string;
}

export interface AuditRecord {
  principal: string;
  action: string;
  object: string;
  result: string;
  detail: Record<string, unknown>;
}

export interface ApiServerDeps {
  replica: Replica;
  logger: Logger;
  nowMs: () => number;
  /** Throws ApiError unauthenticated (or permission_denied for a missing CSRF token). */
  authenticate(creds: Credentials, opts: { mutation: boolean; nowMs: number }): Principal;
  /** Throws ApiError permission_denied naming the permission. */
  authorize(principal: Principal, permission: string, object?: string): void;
  audit(record: AuditRecord): Promise<void>;
}

export interface CallInfo {
  credentials: Credentials;
  readMode: ReadMode;
  remoteAddress: string;
  transport: "grpc" | "http";
  sessionCookie: SessionCookieSink;
  signal: AbortSignal;
}

export const readModeHeader = "x-trivet-read";
export const appliedIndexHeader = "x-trivet-applied-index";

/** The read mode a client asked for (header or metadata x-trivet-read). */
export function parseReadMode(value: string | undefined): ReadMode {
  if (value === undefined || value === "" || value === "local") return "local";
  if (value === "linearizable") return "linearizable";
  throw new ApiError("invalid_argument", `header ${readModeHeader}: must be "local" or "linearizable" (got ${JSON.stringify(value)})`, { field: readModeHeader, reason: "bad_header" });
}

export const noSessionCookie: SessionCookieSink = { set() {}, clear() {} };

export class Dispatcher {
  private readonly byName = new Map<string, RegisteredService>();

  constructor(readonly services: readonly RegisteredService[], readonly deps: ApiServerDeps) {
    for (const s of services) {
      this.byName.set(s.descriptor.name, s);
      this.byName.set(s.descriptor.typeName, s);
    }
  }

  /** A method by service name (short "UserService" or full "trivet.v1.UserService") and method name. */
  find(service: string, method: string): RegisteredMethod | undefined {
    return this.byName.get(service)?.methods.get(method);
  }

  async unary(m: RegisteredMethod, req: unknown, call: CallInfo): Promise<{ response: unknown; appliedIndex: number }> {
    const ctx = await this.prepare(m, req, call);
    try {
      const response = await m.unary!(req, ctx);
      if (m.policy.mutation) await this.audit(m, ctx, req, "ok");
      return { response, appliedIndex: this.deps.replica.stateMachine.appliedIndex };
    } catch (err) {
      throw this.failed(m.action, err);
    }
  }

  /** Authenticates, authorizes and validates before the first message; errors end the stream. */
  async stream(m: RegisteredMethod, req: unknown, call: CallInfo): Promise<AsyncIterable<unknown>> {
    const ctx = await this.prepare(m, req, call);
    return m.stream!(req, ctx);
  }

  private async prepare(m: RegisteredMethod, req: unknown, call: CallInfo): Promise<HandlerContext> {
    const nowMs = this.deps.nowMs();
    const ctx: HandlerContext = {
      principal: null, replica: this.deps.replica, readMode: m.policy.mutation ? "local" : call.readMode, logger: this.deps.logger,
      remoteAddress: call.remoteAddress, nowMs, transport: call.transport, sessionCookie: call.sessionCookie, signal: call.signal, auditDetail: {},
    };
    try {
      if (m.policy.permission !== PUBLIC) {
        ctx.principal = this.deps.authenticate(call.credentials, { mutation: m.policy.mutation, nowMs });
        try {
          this.deps.authorize(ctx.principal, m.policy.permission, m.policy.object?.(req as never));
        } catch (err) {
          if (m.policy.mutation) await this.audit(m, ctx, req, toApiError(err).code, { error: toApiError(err).message });
          throw err;
        }
      }
      m.validate(req);
      if (ctx.readMode === "linearizable") await this.deps.replica.host.linearizableRead();
      return ctx;
    } catch (err) {
      throw this.failed(m.action, err);
    }
  }

  private async audit(m: RegisteredMethod, ctx: HandlerContext, req: unknown, result: string, extra: Record<string, unknown> = {}): Promise<void> {
    const record: AuditRecord = {
      principal: ctx.principal?.username ?? "-",
      action: m.action,
      object: ctx.auditObject ?? m.policy.object?.(req as never) ?? "",
      result,
      detail: { remote: ctx.remoteAddress, transport: ctx.transport, ...ctx.auditDetail, ...extra },
    };
    try {
      await this.deps.audit(record);
    } catch (err) {
      // The mutation itself has happened and cannot be undone; losing its audit entry is
      // logged loudly rather than reported to the caller as a failure of the mutation.
      this.deps.logger.error("audit entry not recorded", { action: record.action, object: record.object, principal: record.principal, error: String(err) });
    }
  }

  /** The ApiError of any failure of a request; internal ones are logged (the caller sees no details). */
  failed(action: string, err: unknown): ApiError {
    if (err instanceof ApiError && err.code !== "internal") return err;
    const e = toApiError(err);
    if (e.code === "internal") this.deps.logger.error("request failed", { action, error: String(e.cause ?? e), stack: (e.cause as Error | undefined)?.stack });
    return e;
  }
}
