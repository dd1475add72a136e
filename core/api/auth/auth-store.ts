// Read side of the auth module: typed queries over the tables of auth-module.ts, run against
// the local replica with stateMachine.read (never writes; writes go through commands).
import type Database from "better-sqlite3";
import { prepared } from "../../state/modules.ts";
import type { ObjectGrant, RoleName } from "../server/service.ts";

export interface UserRow {
  id: string;
  username: string;
  role: RoleName;
  passwordHash: string;
  disabled: boolean;
  createdAtMs: number;
  updatedAtMs: number;
}

export interface SessionRow {
  idHash: string;
  userId: string;
  csrfHash: string;
  createdAtMs: number;
  expiresAtMs: number;
}

export interface TokenRow {
  id: string;
  name: string;
  userId: string;
  username: string;
  secretHash: string;
  createdAtMs: number;
  expiresAtMs: number;
  revokedAtMs: number;
}

export interface GrantRow extends ObjectGrant {
  username: string;
}

export interface AuditRow {
  id: number;
  atMs: number;
  principal: string;
  action: string;
  object: string;
  result: string;
  detail: string;
}

export interface AuditQuery {
  limit: number;
  beforeId: number;
  principal: string;
  actionPrefix: string;
  object: string;
  sinceMs: number;
  untilMs: number;
}

const userCols = `id, username, role, password_hash AS passwordHash, disabled, created_at_ms AS createdAtMs, updated_at_ms AS updatedAtMs`;
const toUser = (r: (Omit<UserRow, "disabled"> & { disabled: number }) | undefined): UserRow | undefined => (r ? { ...r, disabled: r.disabled !== 0 } : undefined);

export function userByName(db: Database.Database, username: string): UserRow | undefined {
  return toUser(prepared(db, `SELECT ${userCols} FROM users WHERE username = ?`).get(username) as never);
}

export function userById(db: Database.Database, id: string): UserRow | undefined {
  return toUser(prepared(db, `SELECT ${userCols} FROM users WHERE id = ?`).get(id) as never);
}

export function listUsers(db: Database.Database): UserRow[] {
  return (prepared(db, `SELECT ${userCols} FROM users ORDER BY username`).all() as never[]).map((r) => toUser(r)!);
}

export function sessionByHash(db: Database.Database, idHash: string): SessionRow | undefined {
  return prepared(db, `SELECT id_hash AS idHash, user_id AS userId, csrf_hash AS csrfHash, created_at_ms AS createdAtMs, expires_at_ms AS expiresAtMs
    FROM sessions WHERE id_hash = ?`).get(idHash) as SessionRow | undefined;
}

const tokenCols = `t.id, t.name, t.user_id AS userId, u.username, t.secret_hash AS secretHash, t.created_at_ms AS createdAtMs,
  t.expires_at_ms AS expiresAtMs, t.revoked_at_ms AS revokedAtMs`;

export function tokenById(db: Database.Database, id: string): TokenRow | undefined {
  return prepared(db, `SELECT ${tokenCols} FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = ?`).get(id) as TokenRow | undefined;
}

export function listTokens(db: Database.Database, userId: string, includeRevoked: boolean): TokenRow[] {
  return prepared(db, `SELECT ${tokenCols} FROM api_tokens t JOIN users u ON u.id = t.user_id
    WHERE t.user_id = ? AND (? OR t.revoked_at_ms = 0) ORDER BY t.created_at_ms, t.id`).all(userId, includeRevoked ? 1 : 0) as TokenRow[];
}

export function grantsOf(db: Database.Database, userId: string): ObjectGrant[] {
  return prepared(db, "SELECT object_kind AS objectKind, object_id AS objectId, role FROM grants WHERE user_id = ? ORDER BY object_kind, object_id").all(userId) as ObjectGrant[];
}

export function listGrants(db: Database.Database, filter: { username: string; objectKind: string; objectId: string }): GrantRow[] {
  return prepared(db, `SELECT u.username, g.object_kind AS objectKind, g.object_id AS objectId, g.role FROM grants g JOIN users u ON u.id = g.user_id
    WHERE (? = '' OR u.username = ?) AND (? = '' OR g.object_kind = ?) AND (? = '' OR g.object_id = ?)
    ORDER BY u.username, g.object_kind, g.object_id`).all(filter.username, filter.username, filter.objectKind, filter.objectKind, filter.objectId, filter.objectId) as GrantRow[];
}

/** Newest first, below beforeId (0: from the newest). */
export function listAudit(db: Database.Database, q: AuditQuery): AuditRow[] {
  return prepared(db, `SELECT id, at_ms AS atMs, principal, action, object, result, detail FROM audit_log
    WHERE (? = 0 OR id < ?) AND (? = '' OR principal = ?) AND (? = '' OR substr(action, 1, length(?)) = ?)
      AND (? = '' OR object = ?) AND (? = 0 OR at_ms >= ?) AND (? = 0 OR at_ms < ?)
    ORDER BY id DESC LIMIT ?`).all(q.beforeId, q.beforeId, q.principal, q.principal, q.actionPrefix, q.actionPrefix, q.actionPrefix,
    q.object, q.object, q.sinceMs, q.sinceMs, q.untilMs, q.untilMs, q.limit) as AuditRow[];
}
