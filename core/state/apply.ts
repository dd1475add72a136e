// The deterministic apply of one decoded command to state.db, with exactly-once de-duplication
// by (clientId, seq). Pure with respect to the world: it reads only the command (time comes
// from the proposer's atMs) and the database, so every replica computes the same results.
import type Database from "better-sqlite3";
import type { Command, Envelope } from "./commands.ts";
import { registry } from "./registry.ts";

/** De-duplication rows kept per client: a retry older than this many newer requests is refused. */
export const clientRequestsKeptPerClient = 1024;
/** A client's rows beyond the window are trimmed when its seq is a multiple of this (at most
 * this many extra rows per client, for one DELETE per that many requests instead of one each). */
export const clientRequestsTrimEverySeqs = 64;
/** De-duplication rows of clients silent for this long (by proposer time) are pruned. */
export const clientRequestRetentionMs = 24 * 60 * 60 * 1000;
/** Age-based pruning runs on command entries whose Raft index is a multiple of this, so it
 * happens at the same log positions on every replica whatever the batch boundaries. It scans
 * the table (no index on at_ms): at most clients × (kept + trim interval) rows, once per interval. */
export const clientRequestsPruneEveryEntries = 1024;
/** Clients whose highest seq is remembered in memory to skip the de-duplication lookup. */
export const clientSeqCacheMax = 100_000;

export type CommandFailureCode = "version_mismatch" | "name_taken" | "not_found" | "request_too_old";

/**
 * The outcome of a command, recorded for de-duplication and returned to the proposer. Modules
 * add their own fields (an id they allocated, say) and failure codes (e.g. "permission_denied",
 * "already_exists"); a failure is deterministic and changes nothing.
 */
export type CommandResult =
  | { ok: true; version?: number; deleted?: boolean; removed?: boolean; [field: string]: unknown }
  | { ok: false; code: CommandFailureCode | (string & {}); message: string; currentVersion?: number; field?: string };

export type ApplyStatements = ReturnType<typeof prepareApply>;

export function prepareApply(db: Database.Database) {
  const cache = new Map<string, Database.Statement>();
  return {
    db,
    /** Highest seq recorded per client on this connection (see applyEnvelope); cleared with the connection. */
    maxSeq: new Map<string, number>(),
    /** Statements of state modules, prepared once per connection. */
    prepare(sql: string): Database.Statement {
      let stmt = cache.get(sql);
      if (!stmt) {
        stmt = db.prepare(sql);
        cache.set(sql, stmt);
      }
      return stmt;
    },
    kvVersion: db.prepare("SELECT version FROM kv WHERE key = ?").pluck(),
    kvPut: db.prepare(`INSERT INTO kv (key, value, version, updated_index) VALUES (?, ?, 1, ?)
      ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = kv.version + 1, updated_index = excluded.updated_index
      RETURNING version`).pluck(),
    kvDelete: db.prepare("DELETE FROM kv WHERE key = ?"),
    nodeByName: db.prepare("SELECT id FROM nodes WHERE name = ?").pluck(),
    nodeUpsert: db.prepare(`INSERT INTO nodes (id, name, address, role, added_index, heartbeat_at_ms) VALUES (?, ?, ?, ?, ?, NULL)
      ON CONFLICT (id) DO UPDATE SET name = excluded.name, address = excluded.address, role = excluded.role`),
    nodeRemove: db.prepare("DELETE FROM nodes WHERE id = ?"),
    nodeHeartbeat: db.prepare("UPDATE nodes SET heartbeat_at_ms = max(coalesce(heartbeat_at_ms, 0), ?) WHERE id = ?"),
    // One statement, two index seeks: the recorded result of this request and the client's newest seq.
    request: db.prepare(`SELECT (SELECT result FROM client_requests WHERE client_id = ? AND seq = ?) AS result,
      (SELECT max(seq) FROM client_requests WHERE client_id = ?) AS maxSeq`),
    requestInsert: db.prepare("INSERT INTO client_requests (client_id, seq, result, at_ms) VALUES (?, ?, ?, ?)"),
    requestTrimClient: db.prepare("DELETE FROM client_requests WHERE client_id = ? AND seq <= ?"),
    requestPruneOld: db.prepare("DELETE FROM client_requests WHERE at_ms < ?"),
  };
}

function buf(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

function execute(st: ApplyStatements, env: Envelope, index: number): CommandResult {
  const c: Command = env.command;
  switch (c.type) {
    case "kv.put":
      return { ok: true, version: st.kvPut.get(buf(c.key), buf(c.value), index) as number };
    case "kv.delete":
      return { ok: true, deleted: st.kvDelete.run(buf(c.key)).changes > 0 };
    case "kv.cas": {
      const current = (st.kvVersion.get(buf(c.key)) as number | undefined) ?? 0;
      if (current !== c.expectedVersion) {
        return { ok: false, code: "version_mismatch", message: `compare-and-swap: expected version ${c.expectedVersion}, found ${current}`, currentVersion: current };
      }
      return { ok: true, version: st.kvPut.get(buf(c.key), buf(c.value), index) as number };
    }
    case "node.upsert": {
      const owner = st.nodeByName.get(c.name) as number | undefined;
      if (owner !== undefined && owner !== c.id) {
        return { ok: false, code: "name_taken", message: `node name "${c.name}" already belongs to node ${owner}` };
      }
      st.nodeUpsert.run(c.id, c.name, c.address, c.role, index);
      return { ok: true };
    }
    case "node.remove":
      return { ok: true, removed: st.nodeRemove.run(c.id).changes > 0 };
    case "node.heartbeat":
      if (st.nodeHeartbeat.run(c.atMs, c.id).changes === 0) {
        return { ok: false, code: "not_found", message: `heartbeat of node ${c.id}: no such node` };
      }
      return { ok: true };
    case "ext":
      return registry.spec(c.name).apply({ db: st.db, index, atMs: env.atMs, clientId: env.clientId, prepare: st.prepare }, c.payload);
  }
}

/**
 * Applies one command exactly once: a (clientId, seq) seen before returns its recorded result
 * without executing again. Must run inside the caller's transaction.
 */
export function applyEnvelope(st: ApplyStatements, env: Envelope, index: number): { result: CommandResult; duplicate: boolean } {
  // Fast path: a seq above the highest this connection has recorded for the client is new (no
  // row can exist for it, and it cannot be too old), so the lookup is skipped. The map may only
  // be higher than the table (a rolled-back batch, pruning), never lower, which keeps this exact.
  let knownMax = st.maxSeq.get(env.clientId);
  if (knownMax === undefined || env.seq <= knownMax) {
    const seen = st.request.get(env.clientId, env.seq, env.clientId) as { result: string | null; maxSeq: number | null };
    knownMax = Math.max(knownMax ?? 0, seen.maxSeq ?? 0);
    if (seen.result !== null) return { result: JSON.parse(seen.result) as CommandResult, duplicate: true };
    if (env.seq <= (seen.maxSeq ?? 0) - clientRequestsKeptPerClient) {
      const message = `request ${env.clientId}#${env.seq} is older than the last ${clientRequestsKeptPerClient} requests of its client; its outcome is no longer known`;
      return { result: { ok: false, code: "request_too_old", message }, duplicate: false };
    }
  }
  const result = execute(st, env, index);
  st.requestInsert.run(env.clientId, env.seq, JSON.stringify(result), env.atMs);
  if (st.maxSeq.size >= clientSeqCacheMax) st.maxSeq.clear();
  st.maxSeq.set(env.clientId, Math.max(knownMax, env.seq));
  if (env.seq % clientRequestsTrimEverySeqs === 0) st.requestTrimClient.run(env.clientId, env.seq - clientRequestsKeptPerClient);
  if (index % clientRequestsPruneEveryEntries === 0) st.requestPruneOld.run(env.atMs - clientRequestRetentionMs);
  return { result, duplicate: false };
}
