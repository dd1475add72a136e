// The cluster's replicated identity as a state module: the cluster row (name, CA certificate,
// CA private key SEALED under cluster.key — never the plain key), the join tokens (hash of the
// secret only) and the node certificates. Single use of a token is enforced here, in the
// deterministic apply: of two consumes of one token, whichever the log orders first wins.
// Expiry is judged against the proposer-stamped atMs, so every replica decides alike.
import type Database from "better-sqlite3";
import type { CommandResult } from "../state/apply.ts";
import { CommandError } from "../state/errors.ts";
import { prepared, type ApplyContext, type CommandSpec, type StateModule } from "../state/modules.ts";
import { joinTokenTtlMsMax } from "./tokens.ts";

export const clusterCertPemMaxChars = 16 * 1024;
export const sealedKeyMaxChars = 4 * 1024;
/** Tokens used or expired this long ago (by proposer time) are pruned when a token is created. */
export const joinTokenRetentionMs = 7 * 24 * 60 * 60 * 1000;
/** Unexpired, unused tokens at most; creating more is refused. */
export const joinTokensOutstandingMax = 100;

const dnsLabel = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const certPem = /^-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----\s*$/;
const sealed = /^tsk1\.[0-9a-f]{16}\.[A-Za-z0-9_-]+$/;

export interface ClusterRow { name: string; caCertPem: string; caKeySealed: string; createdAtMs: number }
export interface JoinTokenRow { id: string; secretHash: string; expiresAtMs: number; createdAtMs: number; usedAtMs: number | null; usedBy: string | null }
export interface NodeCertRow { nodeId: number; name: string; certPem: string; serial: string; notAfterMs: number }

export interface ClusterInitPayload { name: string; caCertPem: string; caKeySealed: string }
export interface JoinTokenCreatePayload { id: string; secretHash: string; expiresAtMs: number; createdAtMs: number }
export interface JoinTokenConsumePayload { id: string; secretHash: string; usedBy: string }
export interface NodeCertRecordPayload { nodeId: number; name: string; certPem: string; serial: string; notAfterMs: number }

type Fields = Record<string, unknown>;

function fields(cmd: string, p: unknown): Fields {
  if (p === null || typeof p !== "object" || Array.isArray(p)) throw new CommandError(cmd, "payload", "must be an object");
  return p as Fields;
}

function str(cmd: string, p: Fields, field: string, pattern: RegExp, maxChars: number, what: string): string {
  const v = p[field];
  if (typeof v !== "string" || v.length > maxChars || !pattern.test(v)) {
    throw new CommandError(cmd, field, `must be ${what} of at most ${maxChars} characters`);
  }
  return v;
}

function int(cmd: string, p: Fields, field: string, min: number): number {
  const v = p[field];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) throw new CommandError(cmd, field, `must be an integer ≥ ${min} (got ${String(v)})`);
  return v;
}

const tokenId = (cmd: string, p: Fields) => str(cmd, p, "id", /^[0-9a-f]{16}$/, 16, "16 hex digits");
const secretHash = (cmd: string, p: Fields) => str(cmd, p, "secretHash", /^[0-9a-f]{64}$/, 64, "a SHA-256 hex digest");
const nodeName = (cmd: string, p: Fields, field: string) => str(cmd, p, field, dnsLabel, 63, "a lower-case DNS label");

const fail = (code: string, message: string): CommandResult => ({ ok: false, code, message });

const init: CommandSpec<ClusterInitPayload> = {
  validate(payload) {
    const c = "cluster.init";
    const p = fields(c, payload);
    return {
      name: nodeName(c, p, "name"),
      caCertPem: str(c, p, "caCertPem", certPem, clusterCertPemMaxChars, "a PEM certificate"),
      caKeySealed: str(c, p, "caKeySealed", sealed, sealedKeyMaxChars, 'a sealed key ("tsk1.…", never a plain key)'),
    };
  },
  apply(ctx, p) {
    const existing = readCluster(ctx.db);
    if (existing) return fail("already_initialized", `initializing cluster ${p.name}: this state already belongs to cluster ${existing.name}`);
    ctx.prepare("INSERT INTO cluster (id, name, ca_cert_pem, ca_key_sealed, created_at_ms) VALUES (1, ?, ?, ?, ?)").run(p.name, p.caCertPem, p.caKeySealed, ctx.atMs);
    return { ok: true };
  },
};

const tokenCreate: CommandSpec<JoinTokenCreatePayload> = {
  validate(payload) {
    const c = "join_token.create";
    const p = fields(c, payload);
    const v = { id: tokenId(c, p), secretHash: secretHash(c, p), createdAtMs: int(c, p, "createdAtMs", 0), expiresAtMs: int(c, p, "expiresAtMs", 1) };
    if (v.expiresAtMs <= v.createdAtMs || v.expiresAtMs - v.createdAtMs > joinTokenTtlMsMax) {
      throw new CommandError(c, "expiresAtMs", `must be after createdAtMs by at most ${joinTokenTtlMsMax} ms (joinTokenTtlMsMax)`);
    }
    return v;
  },
  apply(ctx, p) {
    if (!readCluster(ctx.db)) return fail("not_initialized", `creating join token ${p.id}: the cluster is not initialized`);
    ctx.prepare("DELETE FROM join_tokens WHERE coalesce(used_at_ms, expires_at_ms) < ?").run(ctx.atMs - joinTokenRetentionMs);
    if (ctx.prepare("SELECT 1 FROM join_tokens WHERE id = ?").get(p.id)) return fail("already_exists", `creating join token ${p.id}: the id is taken`);
    const open = ctx.prepare("SELECT count(*) FROM join_tokens WHERE used_at_ms IS NULL AND expires_at_ms > ?").pluck().get(ctx.atMs) as number;
    if (open >= joinTokensOutstandingMax) {
      return fail("too_many_tokens", `creating join token ${p.id}: ${open} tokens are outstanding, the limit is ${joinTokensOutstandingMax} (joinTokensOutstandingMax); use or let some expire`);
    }
    ctx.prepare("INSERT INTO join_tokens (id, secret_hash, expires_at_ms, created_at_ms, used_at_ms, used_by) VALUES (?, ?, ?, ?, NULL, NULL)")
      .run(p.id, p.secretHash, p.expiresAtMs, p.createdAtMs);
    return { ok: true };
  },
};

const tokenConsume: CommandSpec<JoinTokenConsumePayload> = {
  validate(payload) {
    const c = "join_token.consume";
    const p = fields(c, payload);
    return { id: tokenId(c, p), secretHash: secretHash(c, p), usedBy: nodeName(c, p, "usedBy") };
  },
  apply(ctx, p) {
    const t = readJoinToken(ctx.db, p.id);
    if (!t) return fail("not_found", `using join token ${p.id}: no such token`);
    if (t.secretHash !== p.secretHash) return fail("token_secret_mismatch", `using join token ${p.id}: the secret does not match`);
    if (t.usedAtMs !== null) return fail("token_used", `using join token ${p.id}: already used by ${t.usedBy ?? "?"}; tokens are single-use`);
    if (ctx.atMs >= t.expiresAtMs) return fail("token_expired", `using join token ${p.id}: expired at ${new Date(t.expiresAtMs).toISOString()}`);
    ctx.prepare("UPDATE join_tokens SET used_at_ms = ?, used_by = ? WHERE id = ?").run(ctx.atMs, p.usedBy, p.id);
    return { ok: true };
  },
};

const certRecord: CommandSpec<NodeCertRecordPayload> = {
  validate(payload) {
    const c = "node_cert.record";
    const p = fields(c, payload);
    return {
      nodeId: int(c, p, "nodeId", 1),
      name: nodeName(c, p, "name"),
      certPem: str(c, p, "certPem", certPem, clusterCertPemMaxChars, "a PEM certificate"),
      serial: str(c, p, "serial", /^[0-9a-f]{2,40}$/, 40, "lower-case hex"),
      notAfterMs: int(c, p, "notAfterMs", 0),
    };
  },
  apply(ctx, p) {
    if (!readCluster(ctx.db)) return fail("not_initialized", `recording the certificate of node ${p.name}: the cluster is not initialized`);
    ctx.prepare(`INSERT INTO node_certs (node_id, name, cert_pem, serial, not_after_ms) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (node_id) DO UPDATE SET name = excluded.name, cert_pem = excluded.cert_pem, serial = excluded.serial, not_after_ms = excluded.not_after_ms`)
      .run(p.nodeId, p.name, p.certPem, p.serial, p.notAfterMs);
    return { ok: true };
  },
};

const certRemove: CommandSpec<{ nodeId: number }> = {
  validate: (payload) => ({ nodeId: int("node_cert.remove", fields("node_cert.remove", payload), "nodeId", 1) }),
  apply: (ctx: ApplyContext, p) => ({ ok: true, removed: ctx.prepare("DELETE FROM node_certs WHERE node_id = ?").run(p.nodeId).changes > 0 }),
};

export const clusterModule: StateModule = {
  name: "cluster",
  migrations: [
    {
      version: 2,
      name: "cluster, join tokens, node certificates",
      sql: `
CREATE TABLE cluster (id INTEGER PRIMARY KEY CHECK (id = 1), name TEXT NOT NULL, ca_cert_pem TEXT NOT NULL,
  ca_key_sealed TEXT NOT NULL, created_at_ms INTEGER NOT NULL);
CREATE TABLE join_tokens (id TEXT PRIMARY KEY, secret_hash TEXT NOT NULL, expires_at_ms INTEGER NOT NULL,
  created_at_ms INTEGER NOT NULL, used_at_ms INTEGER, used_by TEXT);
CREATE TABLE node_certs (node_id INTEGER PRIMARY KEY, name TEXT NOT NULL, cert_pem TEXT NOT NULL, serial TEXT NOT NULL,
  not_after_ms INTEGER NOT NULL);
`,
    },
  ],
  commands: {
    "cluster.init": init,
    "join_token.create": tokenCreate,
    "join_token.consume": tokenConsume,
    "node_cert.record": certRecord,
    "node_cert.remove": certRemove,
  },
};

export function readCluster(db: Database.Database): ClusterRow | null {
  const row = prepared(db, "SELECT name, ca_cert_pem AS caCertPem, ca_key_sealed AS caKeySealed, created_at_ms AS createdAtMs FROM cluster WHERE id = 1").get();
  return (row as ClusterRow | undefined) ?? null;
}

const tokenColumns = "id, secret_hash AS secretHash, expires_at_ms AS expiresAtMs, created_at_ms AS createdAtMs, used_at_ms AS usedAtMs, used_by AS usedBy";

export function readJoinToken(db: Database.Database, id: string): JoinTokenRow | null {
  return (prepared(db, `SELECT ${tokenColumns} FROM join_tokens WHERE id = ?`).get(id) as JoinTokenRow | undefined) ?? null;
}

export function listJoinTokens(db: Database.Database): JoinTokenRow[] {
  return prepared(db, `SELECT ${tokenColumns} FROM join_tokens ORDER BY created_at_ms, id`).all() as JoinTokenRow[];
}

const certColumns = "node_id AS nodeId, name, cert_pem AS certPem, serial, not_after_ms AS notAfterMs";

export function readNodeCert(db: Database.Database, nodeId: number): NodeCertRow | null {
  return (prepared(db, `SELECT ${certColumns} FROM node_certs WHERE node_id = ?`).get(nodeId) as NodeCertRow | undefined) ?? null;
}

export function listNodeCerts(db: Database.Database): NodeCertRow[] {
  return prepared(db, `SELECT ${certColumns} FROM node_certs ORDER BY node_id`).all() as NodeCertRow[];
}
