// Schema migrations: ordered, idempotent, upgrade from N to N+1, and refusal of edited,
// reordered or removed migrations.
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { StateError } from "./errors.ts";
import { allMigrations, migrate, migrations } from "./migrations.ts";
import type { Migration } from "./migrations.ts";

const second: Migration = { version: 2, name: "kv tags", sql: "CREATE TABLE kv_tags (key BLOB NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (key, tag));" };
const first = migrations[0]!;

function tables(db: Database.Database): string[] {
  return (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
}

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return err instanceof StateError ? err.code : String(err);
  }
  return "accepted";
}

it("applies the state modules' migrations after the base ones, gap-free", () => {
  const db = new Database(":memory:");
  const all = allMigrations();
  expect(all.map((m) => m.version)).toEqual(all.map((_, k) => k + 1));
  expect(migrate(db)).toEqual({ from: 0, to: all.length });
  expect(tables(db)).toEqual(expect.arrayContaining(["cluster", "join_tokens", "users", "node_endpoints"]));
});

describe("migrate", () => {
  it("creates the schema once and is idempotent", () => {
    const db = new Database(":memory:");
    expect(migrate(db, migrations)).toEqual({ from: 0, to: migrations.length });
    expect(tables(db)).toEqual(["client_requests", "kv", "meta", "nodes", "schema_migrations"]);
    db.prepare("INSERT INTO kv (key, value, version, updated_index) VALUES (?, ?, 1, 1)").run(Buffer.from("k"), Buffer.from("v"));
    expect(migrate(db, migrations)).toEqual({ from: migrations.length, to: migrations.length });
    expect(db.prepare("SELECT count(*) AS n FROM kv").get()).toEqual({ n: 1 });
  });

  it("upgrades a database at migration N to N+1 without re-running N", () => {
    const db = new Database(":memory:");
    migrate(db, [first]);
    db.prepare("INSERT INTO kv (key, value, version, updated_index) VALUES (?, ?, 1, 1)").run(Buffer.from("k"), Buffer.from("v"));
    expect(migrate(db, [first, second])).toEqual({ from: 1, to: 2 });
    expect(tables(db)).toContain("kv_tags");
    expect(db.prepare("SELECT count(*) AS n FROM kv").get()).toEqual({ n: 1 });
    expect(db.prepare("SELECT version, name FROM schema_migrations ORDER BY version").all()).toEqual([
      { version: 1, name: first.name },
      { version: 2, name: "kv tags" },
    ]);
  });

  it("refuses reordered, renumbered, edited and removed migrations", () => {
    expect(refusal(() => migrate(new Database(":memory:"), [second, first]))).toBe("migration_refused");
    expect(refusal(() => migrate(new Database(":memory:"), [first, { ...second, version: 3 }]))).toBe("migration_refused");
    const db = new Database(":memory:");
    migrate(db, [first, second]);
    expect(refusal(() => migrate(db, [first]))).toBe("migration_refused");
    expect(refusal(() => migrate(db, [first, { ...second, sql: second.sql + " CREATE TABLE x (y);" }]))).toBe("migration_refused");
    expect(refusal(() => migrate(db, [first, { ...second, name: "renamed" }]))).toBe("migration_refused");
    expect(refusal(() => migrate(db, [first, second]))).toBe("accepted");
  });

  it("rolls back a failing migration entirely", () => {
    const db = new Database(":memory:");
    migrate(db, [first]);
    const broken: Migration = { version: 2, name: "broken", sql: "CREATE TABLE half (x); INSERT INTO no_such_table VALUES (1);" };
    expect(() => migrate(db, [first, broken])).toThrow(/no_such_table/);
    expect(tables(db)).not.toContain("half");
    expect(migrate(db, [first, second])).toEqual({ from: 1, to: 2 });
  });
});
