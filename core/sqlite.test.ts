// Tests of openDatabase: the durability settings every Trivet database gets, and its errors.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openDatabase, SqliteOpenError } from "./sqlite.ts";

describe("openDatabase", () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), "trivet-sqlite-test-")); });
  afterEach(() => { rmSync(dir, { recursive: true, force: true }); });

  it("opens in WAL mode with synchronous FULL, foreign keys on and the default busy timeout", () => {
    const db = openDatabase(join(dir, "a.db"));
    try {
      expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
      expect(db.pragma("synchronous", { simple: true })).toBe(2);
      expect(db.pragma("foreign_keys", { simple: true })).toBe(1);
      expect(db.pragma("busy_timeout", { simple: true })).toBe(5000);
    } finally {
      db.close();
    }
  });

  it("keeps committed rows across reopen, and a read-only connection sees them", () => {
    const db = openDatabase(join(dir, "a.db"), { synchronous: "NORMAL", busyTimeoutMs: 250 });
    expect(db.pragma("synchronous", { simple: true })).toBe(1);
    expect(db.pragma("busy_timeout", { simple: true })).toBe(250);
    db.exec("CREATE TABLE t (v TEXT)");
    db.prepare("INSERT INTO t VALUES (?)").run("kept");
    db.close();

    const ro = openDatabase(join(dir, "a.db"), { readonly: true });
    try {
      expect(ro.prepare("SELECT v FROM t").pluck().all()).toEqual(["kept"]);
      expect(() => ro.exec("INSERT INTO t VALUES ('x')")).toThrow(/readonly/);
    } finally {
      ro.close();
    }
  });

  it("says which file it could not open", () => {
    const missing = join(dir, "missing.db");
    const open = () => openDatabase(missing, { fileMustExist: true });
    expect(open).toThrow(SqliteOpenError);
    expect(open).toThrow(expect.objectContaining({ code: "sqlite_open", message: expect.stringContaining(missing) }));
  });
});
