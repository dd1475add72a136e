// The auth state module on its own: payload validation (nothing unexpected reaches the log, a
// plaintext password field included), deterministic apply, and the rules apply enforces —
// unique usernames, never losing the last administrator, bounded sessions, audit ids.
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import type { CommandResult } from "../../state/apply.ts";
import { CommandError } from "../../state/errors.ts";
import { migrate } from "../../state/migrations.ts";
import type { ApplyContext } from "../../state/modules.ts";
import { authModule, sessionsPerUserMax } from "./auth-module.ts";
import { listAudit, userByName } from "./auth-store.ts";

function open() {
  const db = new Database(":memory:");
  migrate(db);
  let index = 0;
  const run = (name: string, payload: unknown, atMs = 1000): CommandResult => {
    const spec = authModule.commands[name]!;
    const ctx: ApplyContext = { db, index: ++index, atMs, clientId: "c", prepare: (sql) => db.prepare(sql) };
    return spec.apply(ctx, spec.validate(payload));
  };
  return { db, run };
}

const admin = { id: "u_1", username: "root", role: "administrator", passwordHash: "$argon2id$x" };

describe("auth module", () => {
  it("validates payloads before proposal, refusing unknown fields such as a plaintext password", () => {
    const v = authModule.commands["user.create"]!.validate;
    expect(() => v({ ...admin, password: "hunter2" })).toThrow(CommandError);
    expect(() => v({ ...admin, role: "root" })).toThrow(/field "role" must be one of administrator, operator, auditor/);
    expect(() => v({ ...admin, username: "" })).toThrow(/field "username"/);
    expect(() => authModule.commands["session.create"]!.validate({ idHash: "h", userId: "u", csrfHash: "c", expiresAtMs: -1 })).toThrow(/expiresAtMs/);
  });

  it("creates the first administrator once, and keeps usernames unique", () => {
    const { run } = open();
    expect(run("user.create", { ...admin, onlyIfNoUsers: true })).toEqual({ ok: true, id: "u_1" });
    expect(run("user.create", { ...admin, id: "u_2", username: "other", onlyIfNoUsers: true })).toMatchObject({ ok: false, code: "failed_precondition" });
    expect(run("user.create", { ...admin, id: "u_3" })).toMatchObject({ ok: false, code: "already_exists", field: "username" });
  });

  it("never demotes, disables or deletes the last enabled administrator", () => {
    const { db, run } = open();
    run("user.create", admin);
    expect(run("user.update", { username: "root", role: "operator" })).toMatchObject({ ok: false, code: "failed_precondition", field: "role" });
    expect(run("user.update", { username: "root", disabled: true })).toMatchObject({ ok: false, field: "disabled" });
    expect(run("user.delete", { username: "root" })).toMatchObject({ ok: false, code: "failed_precondition" });
    run("user.create", { ...admin, id: "u_2", username: "second" });
    expect(run("user.update", { username: "root", role: "auditor" }, 2000)).toMatchObject({ ok: true });
    expect(userByName(db, "root")).toMatchObject({ role: "auditor", updatedAtMs: 2000, createdAtMs: 1000 });
  });

  it("deletes a user's sessions, tokens and grants with the user", () => {
    const { db, run } = open();
    run("user.create", admin);
    run("user.create", { ...admin, id: "u_2", username: "op", role: "operator" });
    run("session.create", { idHash: "s1", userId: "u_2", csrfHash: "c", expiresAtMs: 5000 });
    run("api_token.create", { id: "0123456789abcdef", name: "ci", userId: "u_2", secretHash: "h", expiresAtMs: 0 });
    run("grant.set", { username: "op", objectKind: "vm", objectId: "web1", role: "administrator" });
    expect(run("user.delete", { username: "op" })).toEqual({ ok: true, deleted: true });
    for (const t of ["sessions", "api_tokens", "grants"]) expect(db.prepare(`SELECT count(*) FROM ${t}`).pluck().get()).toBe(0);
  });

  it("keeps at most sessionsPerUserMax sessions a user and drops expired ones by proposer time", () => {
    const { db, run } = open();
    run("user.create", admin);
    for (let i = 0; i < sessionsPerUserMax + 5; i++) run("session.create", { idHash: `s${i}`, userId: "u_1", csrfHash: "c", expiresAtMs: 10_000 }, 1000 + i);
    expect(db.prepare("SELECT count(*) FROM sessions").pluck().get()).toBe(sessionsPerUserMax);
    expect(db.prepare("SELECT 1 FROM sessions WHERE id_hash = 's0'").get()).toBeUndefined();
    run("session.create", { idHash: "late", userId: "u_1", csrfHash: "c", expiresAtMs: 30_000 }, 20_000);
    expect(db.prepare("SELECT id_hash FROM sessions").pluck().all()).toEqual(["late"]);
  });

  it("numbers audit entries by Raft index and applies identically on two replicas", () => {
    const a = open();
    const b = open();
    for (const r of [a, b]) {
      r.run("user.create", admin);
      r.run("audit.append", { principal: "root", action: "UserService.CreateUser", object: "user/x", result: "ok", detailJson: "{}" }, 1500);
      r.run("api_token.create", { id: "0123456789abcdef", name: "ci", userId: "u_1", secretHash: "h", expiresAtMs: 0 });
      r.run("api_token.revoke", { id: "0123456789abcdef" }, 1700);
    }
    expect(listAudit(a.db, { limit: 10, beforeId: 0, principal: "", actionPrefix: "", object: "", sinceMs: 0, untilMs: 0 })).toEqual([
      { id: 2, atMs: 1500, principal: "root", action: "UserService.CreateUser", object: "user/x", result: "ok", detail: "{}" },
    ]);
    const dump = (db: Database.Database) => ["users", "api_tokens", "audit_log"].map((t) => db.prepare(`SELECT * FROM ${t}`).all());
    expect(dump(a.db)).toEqual(dump(b.db));
    expect(a.run("api_token.revoke", { id: "fedcba9876543210" })).toMatchObject({ ok: false, code: "not_found" });
  });
});
