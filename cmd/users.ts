// Sub-commands for people and their credentials: `trivet user list|create|delete`, `trivet token
// list|create|revoke` and `trivet audit list` — thin wrappers over UserService, AuthService and
// AuditService, printing tables or `--output json`.
import fs from "node:fs";
import { AuditService } from "../core/api/gen/trivet/v1/audit_pb.ts";
import { AuthService } from "../core/api/gen/trivet/v1/auth_pb.ts";
import { Role, UserService } from "../core/api/gen/trivet/v1/users_pb.ts";
import { UsageError, type Command } from "./commands.ts";
import { apiCommand, printResult } from "./client-config.ts";

const roles: Record<string, Role> = { administrator: Role.ADMINISTRATOR, operator: Role.OPERATOR, auditor: Role.AUDITOR };
const roleName = (r: Role) => Object.entries(roles).find(([, v]) => v === r)?.[0] ?? "?";
const when = (ms: bigint) => (ms === 0n ? "-" : new Date(Number(ms)).toISOString().replace(/\.\d+Z$/, "Z"));

function one(positional: string[], what: string): string {
  if (positional.length !== 1) throw new UsageError(`give exactly one ${what}`);
  return positional[0]!;
}

export const userCommands: Command[] = [
  apiCommand(["user", "list"], "list users", "[--output table|json]", {}, async (c, _f, _p, ctx, mode) => {
    const r = await c.call(UserService, "listUsers", {});
    printResult(ctx.stdout, mode, r, r.users.map((u) => ({ username: u.username, role: roleName(u.role), disabled: u.disabled, created: when(u.createdAtMs) })));
  }),
  apiCommand(["user", "create"], "create a user", "NAME --role administrator|operator|auditor --password-file FILE", {
    role: { type: "string", required: true }, "password-file": { type: "string", required: true },
  }, async (c, f, p, ctx) => {
    const role = roles[String(f.role)];
    if (role === undefined) throw new UsageError(`--role must be one of ${Object.keys(roles).join(", ")}`);
    const password = fs.readFileSync(String(f["password-file"]), "utf8").replace(/\r?\n$/, "");
    await c.call(UserService, "createUser", { username: one(p, "user name"), password, role });
    ctx.stdout.write(`user ${p[0]} created (${f.role})\n`);
  }),
  apiCommand(["user", "delete"], "delete a user", "NAME", {}, async (c, _f, p, ctx) => {
    await c.call(UserService, "deleteUser", { username: one(p, "user name") });
    ctx.stdout.write(`user ${p[0]} deleted\n`);
  }),
  apiCommand(["token", "list"], "list API tokens (yours, or a user's with --user)", "[--user NAME] [--all]", {
    user: { type: "string" }, all: { type: "boolean" },
  }, async (c, f, _p, ctx, mode) => {
    const r = await c.call(AuthService, "listApiTokens", { username: String(f.user ?? ""), includeRevoked: f.all === true });
    printResult(ctx.stdout, mode, r, r.tokens.map((t) => ({ id: t.id, name: t.name, user: t.username, created: when(t.createdAtMs), expires: when(t.expiresAtMs), revoked: when(t.revokedAtMs) })));
  }),
  apiCommand(["token", "create"], "create an API token for scripts (printed once)", "NAME [--ttl SECONDS]", { ttl: { type: "string", default: "0" } }, async (c, f, p, ctx, mode) => {
    const ttl = Number(f.ttl);
    if (!Number.isInteger(ttl) || ttl < 0) throw new UsageError(`--ttl must be a number of seconds (got ${JSON.stringify(f.ttl)})`);
    const r = await c.call(AuthService, "createApiToken", { name: one(p, "token name"), ttlSeconds: ttl });
    if (mode === "json") printResult(ctx.stdout, "json", r, []);
    else ctx.stdout.write(`${r.secret}\n`);
  }),
  apiCommand(["token", "revoke"], "revoke an API token", "ID", {}, async (c, _f, p, ctx) => {
    await c.call(AuthService, "revokeApiToken", { id: one(p, "token id") });
    ctx.stdout.write(`token ${p[0]} revoked\n`);
  }),
  apiCommand(["audit", "list"], "show the audit log, newest first", "[--limit N] [--user NAME] [--object OBJ]", {
    limit: { type: "string", default: "50" }, user: { type: "string" }, object: { type: "string" },
  }, async (c, f, _p, ctx, mode) => {
    const limit = Number(f.limit);
    if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`--limit must be a positive number (got ${JSON.stringify(f.limit)})`);
    const r = await c.call(AuditService, "listAuditEntries", { pageSize: limit, principal: String(f.user ?? ""), object: String(f.object ?? "") });
    printResult(ctx.stdout, mode, r, r.entries.map((e) => ({ time: when(e.atMs), user: e.principal, action: e.action, object: e.object, result: e.result })));
  }),
];
