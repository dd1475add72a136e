// The auth area's state module: users, browser sessions, API tokens, per-object grants and the
// audit log, in the replicated state (migrations 10–19). Commands carry only what the proposer
// computed — ids, hashes (argon2id for passwords, sha256 for session ids, CSRF and token
// secrets), times — never a password or a secret, which would otherwise sit in the Raft log
// and snapshots. Apply is deterministic: the only clock is the proposer's atMs.
import type { CommandResult } from "../../state/apply.ts";
import { CommandError } from "../../state/errors.ts";
import type { ApplyContext, CommandSpec, StateModule } from "../../state/modules.ts";
import type { RoleName } from "../server/service.ts";

export const roleNames: readonly RoleName[] = ["administrator", "operator", "auditor"];
/** Sessions kept per user; creating one more drops the oldest. */
export const sessionsPerUserMax = 64;
/** Live (unrevoked) API tokens per user. */
export const apiTokensPerUserMax = 100;
/** Audit entries kept; older ones are dropped every auditPruneEveryEntries Raft entries. */
export const auditEntriesKept = 200_000;
export const auditPruneEveryEntries = 1024;
export const auditDetailMaxBytes = 4096;
/** Migration versions are global and gap-free (migrations.ts): auth's first took the next free one. */
export const authMigrationVersion = 3;

const schema = `
CREATE TABLE users (id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, role TEXT NOT NULL, password_hash TEXT NOT NULL,
  disabled INTEGER NOT NULL DEFAULT 0, created_at_ms INTEGER NOT NULL, updated_at_ms INTEGER NOT NULL);
CREATE TABLE sessions (id_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL, csrf_hash TEXT NOT NULL, created_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL, last_seen_at_ms INTEGER NOT NULL);
CREATE INDEX sessions_user ON sessions (user_id, created_at_ms);
CREATE TABLE api_tokens (id TEXT PRIMARY KEY, name TEXT NOT NULL, user_id TEXT NOT NULL, secret_hash TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL, expires_at_ms INTEGER NOT NULL, last_used_at_ms INTEGER NOT NULL DEFAULT 0, revoked_at_ms INTEGER NOT NULL DEFAULT 0);
CREATE INDEX api_tokens_user ON api_tokens (user_id);
CREATE TABLE grants (user_id TEXT NOT NULL, object_kind TEXT NOT NULL, object_id TEXT NOT NULL, role TEXT NOT NULL,
  PRIMARY KEY (user_id, object_kind, object_id)) WITHOUT ROWID;
CREATE TABLE audit_log (id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, principal TEXT NOT NULL, action TEXT NOT NULL,
  object TEXT NOT NULL, result TEXT NOT NULL, detail TEXT NOT NULL);
CREATE INDEX audit_log_principal ON audit_log (principal, id);
`;

// ---- payload validation (pure; runs before proposal and again on decode) --------------------

type Shape = Record<string, "string" | "number" | "boolean" | "role" | "string?" | "number?" | "boolean?" | "role?">;

function validator<P>(command: string, shape: Shape): (payload: unknown) => P {
  return (payload) => {
    if (payload === null || typeof payload !== "object" || Array.isArray(payload)) throw new CommandError(command, "payload", "must be an object");
    const o = payload as Record<string, unknown>;
    for (const [field, kind] of Object.entries(shape)) {
      const v = o[field];
      const optional = kind.endsWith("?");
      if (v === undefined && optional) continue;
      const base = kind.replace("?", "");
      const ok = base === "role" ? roleNames.includes(v as RoleName)
        : base === "number" ? typeof v === "number" && Number.isSafeInteger(v) && v >= 0
        : base === "string" ? typeof v === "string" && v.length > 0 && v.length <= 4096
        : typeof v === "boolean";
      if (!ok) throw new CommandError(command, field, base === "role" ? `must be one of ${roleNames.join(", ")}` : `must be ${base === "number" ? "an integer ≥ 0" : `a ${base}`}${base === "string" ? " of 1–4096 characters" : ""}`);
    }
    for (const k of Object.keys(o)) if (!(k in shape)) throw new CommandError(command, k, "is not a field of this command");
    return o as P;
  };
}

const fail = (code: string, message: string, field?: string): CommandResult => ({ ok: false, code, message, field });

function enabledAdmins(ctx: ApplyContext, exceptUserId: string): number {
  return ctx.prepare("SELECT count(*) FROM users WHERE role = 'administrator' AND disabled = 0 AND id <> ?").pluck().get(exceptUserId) as number;
}

function userId(ctx: ApplyContext, username: string): string | undefined {
  return ctx.prepare("SELECT id FROM users WHERE username = ?").pluck().get(username) as string | undefined;
}

// ---- commands ---------------------------------------------------------------------------------

export interface UserCreate { id: string; username: string; role: RoleName; passwordHash: string; onlyIfNoUsers?: boolean }
export interface UserUpdate { username: string; role?: RoleName; passwordHash?: string; disabled?: boolean }
export interface SessionCreate { idHash: string; userId: string; csrfHash: string; expiresAtMs: number }
export interface TokenCreate { id: string; name: string; userId: string; secretHash: string; expiresAtMs: number }
export interface GrantSet { username: string; objectKind: string; objectId: string; role: RoleName }
export interface AuditAppend { principal: string; action: string; object?: string; result: string; detailJson: string }

const userCreate: CommandSpec<UserCreate> = {
  validate: validator("user.create", { id: "string", username: "string", role: "role", passwordHash: "string", onlyIfNoUsers: "boolean?" }),
  apply(ctx, p) {
    if (p.onlyIfNoUsers && (ctx.prepare("SELECT count(*) FROM users").pluck().get() as number) > 0) {
      return fail("failed_precondition", "the cluster already has users; the first administrator is created only once");
    }
    if (userId(ctx, p.username) !== undefined) return fail("already_exists", `user "${p.username}" already exists`, "username");
    ctx.prepare("INSERT INTO users (id, username, role, password_hash, disabled, created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, 0, ?, ?)")
      .run(p.id, p.username, p.role, p.passwordHash, ctx.atMs, ctx.atMs);
    return { ok: true, id: p.id };
  },
};

const userUpdate: CommandSpec<UserUpdate> = {
  validate: validator("user.update", { username: "string", role: "role?", passwordHash: "string?", disabled: "boolean?" }),
  apply(ctx, p) {
    const id = userId(ctx, p.username);
    if (id === undefined) return fail("not_found", `user "${p.username}" does not exist`, "username");
    const losesAdmin = (p.role !== undefined && p.role !== "administrator") || p.disabled === true;
    const isAdmin = ctx.prepare("SELECT role = 'administrator' AND disabled = 0 FROM users WHERE id = ?").pluck().get(id) === 1;
    if (losesAdmin && isAdmin && enabledAdmins(ctx, id) === 0) {
      return fail("failed_precondition", `user "${p.username}" is the last enabled administrator; make another administrator first`, p.disabled ? "disabled" : "role");
    }
    ctx.prepare(`UPDATE users SET role = coalesce(?, role), password_hash = coalesce(?, password_hash), disabled = coalesce(?, disabled),
      updated_at_ms = ? WHERE id = ?`).run(p.role ?? null, p.passwordHash ?? null, p.disabled === undefined ? null : Number(p.disabled), ctx.atMs, id);
    return { ok: true, id };
  },
};

const userDelete: CommandSpec<{ username: string }> = {
  validate: validator("user.delete", { username: "string" }),
  apply(ctx, p) {
    const id = userId(ctx, p.username);
    if (id === undefined) return fail("not_found", `user "${p.username}" does not exist`, "username");
    const isAdmin = ctx.prepare("SELECT role = 'administrator' AND disabled = 0 FROM users WHERE id = ?").pluck().get(id) === 1;
    if (isAdmin && enabledAdmins(ctx, id) === 0) return fail("failed_precondition", `user "${p.username}" is the last enabled administrator`, "username");
    for (const t of ["sessions", "api_tokens", "grants"]) ctx.prepare(`DELETE FROM ${t} WHERE user_id = ?`).run(id);
    ctx.prepare("DELETE FROM users WHERE id = ?").run(id);
    return { ok: true, deleted: true };
  },
};

const sessionCreate: CommandSpec<SessionCreate> = {
  validate: validator("session.create", { idHash: "string", userId: "string", csrfHash: "string", expiresAtMs: "number" }),
  apply(ctx, p) {
    if (ctx.prepare("SELECT disabled FROM users WHERE id = ?").pluck().get(p.userId) !== 0) return fail("failed_precondition", "the user does not exist or is disabled", "username");
    // Expired sessions are dropped by proposer time, the same on every replica.
    ctx.prepare("DELETE FROM sessions WHERE expires_at_ms <= ?").run(ctx.atMs);
    ctx.prepare(`DELETE FROM sessions WHERE user_id = ? AND id_hash NOT IN
      (SELECT id_hash FROM sessions WHERE user_id = ? ORDER BY created_at_ms DESC LIMIT ?)`).run(p.userId, p.userId, sessionsPerUserMax - 1);
    ctx.prepare("INSERT INTO sessions (id_hash, user_id, csrf_hash, created_at_ms, expires_at_ms, last_seen_at_ms) VALUES (?, ?, ?, ?, ?, ?)")
      .run(p.idHash, p.userId, p.csrfHash, ctx.atMs, p.expiresAtMs, ctx.atMs);
    return { ok: true };
  },
};

const sessionRevoke: CommandSpec<{ idHash: string }> = {
  validate: validator("session.revoke", { idHash: "string" }),
  apply(ctx, p) {
    return { ok: true, removed: ctx.prepare("DELETE FROM sessions WHERE id_hash = ?").run(p.idHash).changes > 0 };
  },
};

const tokenCreate: CommandSpec<TokenCreate> = {
  validate: validator("api_token.create", { id: "string", name: "string", userId: "string", secretHash: "string", expiresAtMs: "number" }),
  apply(ctx, p) {
    if (ctx.prepare("SELECT disabled FROM users WHERE id = ?").pluck().get(p.userId) !== 0) return fail("failed_precondition", "the user does not exist or is disabled", "username");
    const live = ctx.prepare("SELECT count(*) FROM api_tokens WHERE user_id = ? AND revoked_at_ms = 0 AND (expires_at_ms = 0 OR expires_at_ms > ?)").pluck().get(p.userId, ctx.atMs) as number;
    if (live >= apiTokensPerUserMax) return fail("resource_exhausted", `the user has ${live} live API tokens, the limit (apiTokensPerUserMax); revoke some first`);
    ctx.prepare("INSERT INTO api_tokens (id, name, user_id, secret_hash, created_at_ms, expires_at_ms) VALUES (?, ?, ?, ?, ?, ?)")
      .run(p.id, p.name, p.userId, p.secretHash, ctx.atMs, p.expiresAtMs);
    return { ok: true, id: p.id };
  },
};

const tokenRevoke: CommandSpec<{ id: string }> = {
  validate: validator("api_token.revoke", { id: "string" }),
  apply(ctx, p) {
    const r = ctx.prepare("UPDATE api_tokens SET revoked_at_ms = ? WHERE id = ? AND revoked_at_ms = 0").run(ctx.atMs, p.id);
    if (r.changes === 0 && ctx.prepare("SELECT 1 FROM api_tokens WHERE id = ?").get(p.id) === undefined) return fail("not_found", `API token ${p.id} does not exist`, "id");
    return { ok: true };
  },
};

const grantSet: CommandSpec<GrantSet> = {
  validate: validator("grant.set", { username: "string", objectKind: "string", objectId: "string", role: "role" }),
  apply(ctx, p) {
    const id = userId(ctx, p.username);
    if (id === undefined) return fail("not_found", `user "${p.username}" does not exist`, "grant.username");
    ctx.prepare(`INSERT INTO grants (user_id, object_kind, object_id, role) VALUES (?, ?, ?, ?)
      ON CONFLICT (user_id, object_kind, object_id) DO UPDATE SET role = excluded.role`).run(id, p.objectKind, p.objectId, p.role);
    return { ok: true };
  },
};

const grantRemove: CommandSpec<Omit<GrantSet, "role">> = {
  validate: validator("grant.remove", { username: "string", objectKind: "string", objectId: "string" }),
  apply(ctx, p) {
    const id = userId(ctx, p.username);
    if (id === undefined) return fail("not_found", `user "${p.username}" does not exist`, "grant.username");
    return { ok: true, removed: ctx.prepare("DELETE FROM grants WHERE user_id = ? AND object_kind = ? AND object_id = ?").run(id, p.objectKind, p.objectId).changes > 0 };
  },
};

const auditAppend: CommandSpec<AuditAppend> = {
  validate: (payload) => {
    const p = validator<AuditAppend>("audit.append", { principal: "string", action: "string", object: "string?", result: "string", detailJson: "string" })(payload);
    if (p.detailJson.length > auditDetailMaxBytes) throw new CommandError("audit.append", "detailJson", `is over ${auditDetailMaxBytes} bytes`);
    return p;
  },
  apply(ctx, p) {
    ctx.prepare("INSERT INTO audit_log (id, at_ms, principal, action, object, result, detail) VALUES (?, ?, ?, ?, ?, ?, ?)")
      .run(ctx.index, ctx.atMs, p.principal, p.action, p.object ?? "", p.result, p.detailJson);
    if (ctx.index % auditPruneEveryEntries === 0) {
      ctx.prepare("DELETE FROM audit_log WHERE id <= (SELECT id FROM audit_log ORDER BY id DESC LIMIT 1 OFFSET ?)").run(auditEntriesKept);
    }
    return { ok: true, id: ctx.index };
  },
};

export const authModule: StateModule = {
  name: "auth",
  migrations: [{ version: authMigrationVersion, name: "auth: users, sessions, API tokens, grants, audit log", sql: schema }],
  commands: {
    "user.create": userCreate,
    "user.update": userUpdate,
    "user.delete": userDelete,
    "session.create": sessionCreate,
    "session.revoke": sessionRevoke,
    "api_token.create": tokenCreate,
    "api_token.revoke": tokenRevoke,
    "grant.set": grantSet,
    "grant.remove": grantRemove,
    "audit.append": auditAppend,
  },
};
