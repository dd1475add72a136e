// Numbered, append-only schema migrations of state.db (the one definition of its schema).
// A migration, once released, is never edited, reordered or removed: a database records the
// name and a checksum of every migration it applied, and opening refuses a list that disagrees.
import { createHash } from "node:crypto";
import type Database from "better-sqlite3";
import { StateError } from "./errors.ts";
import { registry } from "./registry.ts";

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: "kv, nodes, meta, client requests",
    sql: `
CREATE TABLE kv (key BLOB PRIMARY KEY, value BLOB NOT NULL, version INTEGER NOT NULL, updated_index INTEGER NOT NULL);
CREATE TABLE nodes (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, address TEXT NOT NULL, role TEXT NOT NULL,
  added_index INTEGER NOT NULL, heartbeat_at_ms INTEGER);
CREATE TABLE meta (id INTEGER PRIMARY KEY CHECK (id = 1), applied_index INTEGER NOT NULL, applied_term INTEGER NOT NULL,
  conf_state TEXT NOT NULL);
INSERT INTO meta (id, applied_index, applied_term, conf_state) VALUES (1, 0, 0, '{"voters":[],"learners":[]}');
CREATE TABLE client_requests (client_id TEXT NOT NULL, seq INTEGER NOT NULL, result TEXT NOT NULL, at_ms INTEGER NOT NULL,
  PRIMARY KEY (client_id, seq)) WITHOUT ROWID;
`,
  },
];

/**
 * The list actually applied: the base list plus the state modules' migrations (modules.ts), in
 * version order. Versions are global and gap-free (1, 2, 3…): a new migration of any module
 * takes the next free number — today 1 base, 2 cluster, 3 auth, 4 node endpoints.
 */
export function allMigrations(): Migration[] {
  return [...migrations, ...registry.migrations()].sort((a, b) => a.version - b.version);
}

function checksum(m: Migration): string {
  return createHash("sha256").update(m.sql).digest("hex").slice(0, 16);
}

function checkList(list: readonly Migration[]): void {
  list.forEach((m, k) => {
    if (m.version !== k + 1) {
      throw new StateError("migration_refused", `checking migrations: position ${k + 1} holds version ${m.version}; versions must be 1, 2, 3… in order`);
    }
  });
}

/**
 * Brings db up to the last migration of `list`, each migration in its own transaction together
 * with its schema_migrations row. Idempotent; refuses a database whose recorded migrations do
 * not match the list (edited, reordered or removed migrations, or a database from a newer build).
 * Returns the versions before and after.
 */
export function migrate(db: Database.Database, list: readonly Migration[] = allMigrations()): { from: number; to: number } {
  checkList(list);
  db.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL)");
  const applied = db.prepare("SELECT version, name, checksum FROM schema_migrations ORDER BY version").all() as { version: number; name: string; checksum: string }[];
  applied.forEach((row, k) => {
    const m = list[k];
    if (row.version !== k + 1) {
      throw new StateError("migration_refused", `opening state.db: recorded migrations skip from ${k} to ${row.version}`);
    }
    if (!m) {
      throw new StateError("migration_refused", `opening state.db: it has migration ${row.version} ("${row.name}") that this build does not know; use a build at least as new as the one that wrote it`);
    }
    if (m.name !== row.name || checksum(m) !== row.checksum) {
      throw new StateError("migration_refused", `opening state.db: migration ${row.version} was recorded as "${row.name}" but this build has "${m.name}" with different SQL; released migrations must never change`);
    }
  });
  const record = db.prepare("INSERT INTO schema_migrations (version, name, checksum) VALUES (?, ?, ?)");
  for (const m of list.slice(applied.length)) {
    db.transaction(() => {
      db.exec(m.sql);
      record.run(m.version, m.name, checksum(m));
    })();
  }
  return { from: applied.length, to: list.length };
}
