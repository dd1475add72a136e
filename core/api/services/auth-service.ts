// AuthService: login (session or API token), logout, who-am-I and the caller's API tokens.
// Passwords are verified here with argon2id; sessions and tokens are created through Raft with
// only their hashes; Login is throttled per username and per address (login-throttle.ts).
import { ApiError, checkResult } from "../server/errors.ts";
import { PUBLIC, defineService, type HandlerContext, type Principal, type RegisteredService } from "../server/service.ts";
import { check, intBetween, lengthBetween, matches, noFields, oneOf, usernameRule } from "../server/validation.ts";
import { AuthService, CredentialKind, type LoginRequest } from "../gen/trivet/v1/auth_pb.ts";
import { grantsOf, listTokens, tokenById, userByName, type UserRow } from "../auth/auth-store.ts";
import { newApiToken, newSession, type RandomBytes } from "../auth/credentials.ts";
import { LoginThrottle } from "../auth/login-throttle.ts";
import { passwordMaxChars, verifyNobody, verifyPassword } from "../auth/passwords.ts";
import { authorize, permissions } from "../auth/rbac.ts";
import { grantMessage, tokenMessage, userMessage } from "./convert.ts";

export const sessionTtlDefaultSeconds = 12 * 3600;
export const sessionTtlMaxSeconds = 7 * 24 * 3600;
export const tokenTtlDefaultSeconds = 90 * 24 * 3600;
export const tokenTtlMaxSeconds = 2 * 365 * 24 * 3600;
/** Password verifications running at once on a node (each holds ~19 MiB of argon2 memory). */
export const loginsInFlightMax = 8;

export interface AuthServiceOptions {
  throttle?: LoginThrottle;
  randomBytes?: RandomBytes;
}

const tokenNameRule = matches(/^[A-Za-z0-9 ._-]{1,64}$/, "must be 1–64 characters of a-z, A-Z, 0-9, space, ., _, -");
const credentialKinds = new Map([[CredentialKind.SESSION, "CREDENTIAL_KIND_SESSION"], [CredentialKind.TOKEN, "CREDENTIAL_KIND_TOKEN"]]);

/** The host part of a remote address as the transports report it ("ipv4:1.2.3.4:5", "[::1]:5"). */
export function hostOf(remote: string): string {
  const s = remote.replace(/^ipv[46]:/, "");
  const v6 = /^\[([^\]]+)\]/.exec(s);
  if (v6) return v6[1]!;
  return s.includes(":") && s.indexOf(":") === s.lastIndexOf(":") ? s.slice(0, s.indexOf(":")) : s;
}

function me(ctx: HandlerContext): Principal {
  if (!ctx.principal) throw new ApiError("unauthenticated", "not authenticated");
  return ctx.principal;
}

function validateLogin(req: LoginRequest): void {
  check("username", req.username, usernameRule);
  check("password", req.password, lengthBetween(1, passwordMaxChars));
  check("kind", req.kind, oneOf(credentialKinds, "credential kind"));
  if (req.tokenName) check("token_name", req.tokenName, tokenNameRule);
  const max = req.kind === CredentialKind.SESSION ? sessionTtlMaxSeconds : tokenTtlMaxSeconds;
  check("ttl_seconds", req.ttlSeconds, intBetween(0, max));
}

async function issueSession(req: LoginRequest, ctx: HandlerContext, user: UserRow, randomBytes?: RandomBytes) {
  const s = newSession(randomBytes);
  const expiresAtMs = ctx.nowMs + (req.ttlSeconds || sessionTtlDefaultSeconds) * 1000;
  checkResult(await ctx.replica.execute({ type: "ext", name: "session.create", payload: { idHash: s.idHash, userId: user.id, csrfHash: s.csrfHash, expiresAtMs } }), "creating the session");
  ctx.sessionCookie.set(s.sessionId, expiresAtMs);
  // Over HTTP the id lives only in the HttpOnly cookie, out of reach of page scripts.
  return { sessionId: ctx.transport === "http" ? "" : s.sessionId, csrfToken: s.csrfToken, expiresAtMs: BigInt(expiresAtMs), user: userMessage(user) };
}

async function issueToken(req: LoginRequest, ctx: HandlerContext, user: UserRow, randomBytes?: RandomBytes) {
  const t = newApiToken(randomBytes);
  const expiresAtMs = ctx.nowMs + (req.ttlSeconds || tokenTtlDefaultSeconds) * 1000;
  const payload = { id: t.id, name: req.tokenName || "login", userId: user.id, secretHash: t.secretHash, expiresAtMs };
  checkResult(await ctx.replica.execute({ type: "ext", name: "api_token.create", payload }), "creating the API token");
  ctx.auditDetail.token = t.id;
  return { apiToken: t.token, expiresAtMs: BigInt(expiresAtMs), user: userMessage(user) };
}

export function authService(opts: AuthServiceOptions = {}): RegisteredService {
  const throttle = opts.throttle ?? new LoginThrottle();
  const inFlight = new Set<string>();

  async function checkPassword(req: LoginRequest, ctx: HandlerContext): Promise<UserRow> {
    const address = hostOf(ctx.remoteAddress);
    throttle.check(req.username, address, ctx.nowMs);
    // One verification per username at a time, and a few per node: parallel guesses cannot
    // outrun the failure count, and argon2's memory stays bounded.
    if (inFlight.has(req.username) || inFlight.size >= loginsInFlightMax) {
      throw new ApiError("resource_exhausted", "another login is being checked; try again in a second", { reason: "login_busy", retryAfterMs: 1000 });
    }
    inFlight.add(req.username);
    try {
      const user = ctx.replica.stateMachine.read((db) => userByName(db, req.username)).value;
      const ok = user ? await verifyPassword(req.password, user.passwordHash) : await verifyNobody(req.password);
      if (!ok || !user || user.disabled) {
        throttle.failure(req.username, address, ctx.nowMs);
        ctx.logger.warn("login refused", { username: req.username, remote: ctx.remoteAddress });
        throw new ApiError("unauthenticated", "wrong username or password, or the user is disabled", { reason: "login_failed" });
      }
      throttle.success(req.username);
      return user;
    } finally {
      inFlight.delete(req.username);
    }
  }

  return defineService({
    descriptor: AuthService,
    policy: {
      login: { permission: PUBLIC, mutation: true, object: (r) => `user/${r.username}` },
      logout: { permission: permissions.self, mutation: true },
      whoAmI: { permission: permissions.self, mutation: false },
      createApiToken: { permission: permissions.self, mutation: true },
      listApiTokens: { permission: permissions.self, mutation: false },
      revokeApiToken: { permission: permissions.self, mutation: true, object: (r) => `token/${r.id}` },
    },
    validate: {
      login: validateLogin,
      logout: noFields,
      whoAmI: noFields,
      createApiToken: (r) => {
        check("name", r.name, tokenNameRule);
        check("ttl_seconds", r.ttlSeconds, intBetween(0, tokenTtlMaxSeconds));
      },
      listApiTokens: (r) => {
        if (r.username) check("username", r.username, usernameRule);
      },
      revokeApiToken: (r) => check("id", r.id, matches(/^[0-9a-f]{16}$/, "must be a token id of 16 hex digits")),
    },
    handlers: {
      async login(req, ctx) {
        const user = await checkPassword(req, ctx);
        const kind = req.kind === CredentialKind.SESSION ? "session" : "token";
        ctx.principal = { userId: user.id, username: user.username, role: user.role, grants: [], credential: { kind, id: "" } };
        ctx.auditDetail.kind = kind;
        return kind === "session" ? issueSession(req, ctx, user, opts.randomBytes) : issueToken(req, ctx, user, opts.randomBytes);
      },
      async logout(_req, ctx) {
        const p = me(ctx);
        if (p.credential.kind === "session") {
          checkResult(await ctx.replica.execute({ type: "ext", name: "session.revoke", payload: { idHash: p.credential.id } }), "ending the session");
          ctx.sessionCookie.clear();
        } else {
          checkResult(await ctx.replica.execute({ type: "ext", name: "api_token.revoke", payload: { id: p.credential.id } }), "revoking the API token");
          ctx.auditObject = `token/${p.credential.id}`;
        }
        return {};
      },
      async whoAmI(_req, ctx) {
        const p = me(ctx);
        const { value } = ctx.replica.stateMachine.read((db) => ({ user: userByName(db, p.username), grants: grantsOf(db, p.userId) }));
        if (!value.user) throw new ApiError("not_found", `user "${p.username}" no longer exists`);
        const credential = p.credential.kind === "session" ? CredentialKind.SESSION : CredentialKind.TOKEN;
        return { user: userMessage(value.user), grants: value.grants.map((g) => grantMessage({ ...g, username: p.username })), credential };
      },
      async createApiToken(req, ctx) {
        const p = me(ctx);
        const t = newApiToken(opts.randomBytes);
        const expiresAtMs = ctx.nowMs + (req.ttlSeconds || tokenTtlDefaultSeconds) * 1000;
        checkResult(await ctx.replica.execute({ type: "ext", name: "api_token.create", payload: { id: t.id, name: req.name, userId: p.userId, secretHash: t.secretHash, expiresAtMs } }), `creating API token "${req.name}"`);
        ctx.auditObject = `token/${t.id}`;
        ctx.auditDetail.name = req.name;
        const row = ctx.replica.stateMachine.read((db) => tokenById(db, t.id)).value;
        if (!row) throw new ApiError("internal", `API token ${t.id} was created but cannot be read back`);
        return { token: tokenMessage(row), secret: t.token };
      },
      async listApiTokens(req, ctx) {
        const p = me(ctx);
        const username = req.username || p.username;
        if (username !== p.username) authorize(p, permissions.tokensManage, `user/${username}`);
        const { value } = ctx.replica.stateMachine.read((db) => {
          const u = userByName(db, username);
          return u ? listTokens(db, u.id, req.includeRevoked) : undefined;
        });
        if (!value) throw new ApiError("not_found", `user "${username}" does not exist`, { field: "username" });
        return { tokens: value.map(tokenMessage) };
      },
      async revokeApiToken(req, ctx) {
        const p = me(ctx);
        const row = ctx.replica.stateMachine.read((db) => tokenById(db, req.id)).value;
        if (!row) throw new ApiError("not_found", `API token ${req.id} does not exist`, { field: "id" });
        if (row.userId !== p.userId) authorize(p, permissions.tokensManage, `token/${req.id}`);
        checkResult(await ctx.replica.execute({ type: "ext", name: "api_token.revoke", payload: { id: req.id } }), `revoking API token ${req.id}`);
        return {};
      },
    },
  });
}
