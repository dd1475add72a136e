// The API through both transports with the same cases: a real single-node Replica (Raft + SQLite
// state), the auth services served by grpc-js and by hono, and a table of cases each run once
// over gRPC and once over HTTP — unauthenticated refused, Auditor cannot mutate, Operator cannot
// manage users, a session mutation without CSRF refused, bad input refused naming the field and
// changing nothing, mutations audited, login brute force throttled, token revocation immediate.
import { serve, type ServerType } from "@hono/node-server";
import * as grpc from "@grpc/grpc-js";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootstrapAdmin } from "../../core/api/auth/bootstrap.ts";
import { LoginThrottle } from "../../core/api/auth/login-throttle.ts";
import { AuditService } from "../../core/api/gen/trivet/v1/audit_pb.ts";
import { AuthService } from "../../core/api/gen/trivet/v1/auth_pb.ts";
import { EventService } from "../../core/api/gen/trivet/v1/events_pb.ts";
import { UserService } from "../../core/api/gen/trivet/v1/users_pb.ts";
import { listenGrpc } from "../../core/api/grpc-listen.ts";
import { defineService } from "../../core/api/server/service.ts";
import { check, matches } from "../../core/api/server/validation.ts";
import { createApi } from "../../core/api/services/api.ts";
import { MemoryHub } from "../../core/raft/driver/memory-transport.ts";
import { Replica } from "../../core/state/replica.ts";
import { grpcClient, httpClient, type ApiClient, type CallResult, type Creds } from "./clients.ts";

const adminPassword = "correct horse battery staple";
const userPassword = "operator password 1";
const leaderWaitMs = 10_000;

/** A stand-in EventService (the real one is the lead's): three events, or an error mid-way. */
const testEvents = defineService({
  descriptor: EventService,
  policy: { watch: { permission: "events.read", mutation: false } },
  validate: { watch: (r) => check("object_prefix", r.objectPrefix, matches(/^[a-z/0-9]*$/, "must be a-z, 0-9, /")) },
  handlers: {
    async *watch(req) {
      for (let i = 1; i <= 3; i++) yield { id: BigInt(i), timeMs: 1000n * BigInt(i), kind: "vm.state", object: `${req.objectPrefix}web${i}`, message: `web${i} running`, fields: { n: String(i) } };
    },
  },
});

let dir: string;
let replica: Replica;
let grpcServer: grpc.Server;
let httpServer: ServerType;
let clients: ApiClient[];
let httpBase: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "trivet-api-"));
  replica = await Replica.open({ id: 1, dataDir: dir, transport: new MemoryHub().transport(1), initialMembers: new Map([[1, "n1"]]), host: { tickMs: 10 } });
  const deadline = Date.now() + leaderWaitMs;
  while (replica.host.leaderInfo().leader !== 1) {
    if (Date.now() > deadline) throw new Error(`no leader within ${leaderWaitMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
  await bootstrapAdmin(replica, "admin", adminPassword);
  const logger = { debug() {}, info() {}, warn() {}, error: (m: string, f?: unknown) => console.error(m, f) };
  const throttle = new LoginThrottle({ usernameFailuresAllowed: 3, addressFailuresAllowed: 1000, lockoutBaseMs: 60_000 });
  const api = createApi({ replica, logger, services: [testEvents], throttle });
  grpcServer = new grpc.Server();
  api.addToGrpcServer(grpcServer);
  const grpcPort = await listenGrpc(grpcServer, "127.0.0.1:0", grpc.ServerCredentials.createInsecure());
  const httpPort = await new Promise<number>((resolve) => {
    httpServer = serve({ fetch: api.httpApp.fetch, hostname: "127.0.0.1", port: 0 }, (info) => resolve(info.port));
  });
  httpBase = `http://127.0.0.1:${httpPort}`;
  clients = [grpcClient(`127.0.0.1:${grpcPort}`), httpClient(httpBase)];
});

afterAll(async () => {
  for (const c of clients ?? []) c.close();
  await new Promise<void>((r) => (grpcServer ? grpcServer.tryShutdown(() => r()) : r()));
  await new Promise<void>((r) => (httpServer ? httpServer.close(() => r()) : r()));
  await replica?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function login(c: ApiClient, username: string, password: string, kind: "CREDENTIAL_KIND_TOKEN" | "CREDENTIAL_KIND_SESSION" = "CREDENTIAL_KIND_TOKEN") {
  const r = await c.call(AuthService, "Login", { username, password, kind });
  if (!r.ok) throw new Error(`login ${username} over ${c.transport}: ${r.code} ${r.message}`);
  return r;
}

async function tokenFor(c: ApiClient, username: string, password: string): Promise<Creds> {
  return { bearer: (await login(c, username, password)).body.apiToken as string };
}

function okBody<T>(r: CallResult): T {
  if (!r.ok) throw new Error(`expected success, got ${r.code}: ${r.message}`);
  return r.body as T;
}

async function auditEntries(c: ApiClient, admin: Creds, filter: Record<string, string> = {}) {
  const r = await c.call(AuditService, "ListAuditEntries", { pageSize: 1000, ...filter }, admin);
  if (!r.ok) throw new Error(`listing audit: ${r.message}`);
  return r.body.entries as { principal: string; action: string; object: string; result: string; detailJson: string }[];
}

describe.each(["grpc", "http"] as const)("API over %s", (transport) => {
  let c: ApiClient;
  let admin: Creds;
  let operator: Creds;
  let auditor: Creds;
  const sfx = transport;

  beforeAll(async () => {
    c = clients.find((x) => x.transport === transport)!;
    admin = await tokenFor(c, "admin", adminPassword);
    for (const [name, role] of [[`olive-${sfx}`, "ROLE_OPERATOR"], [`audrey-${sfx}`, "ROLE_AUDITOR"]] as const) {
      const r = await c.call(UserService, "CreateUser", { username: name, password: userPassword, role }, admin);
      expect(r).toMatchObject({ ok: true });
    }
    operator = await tokenFor(c, `olive-${sfx}`, userPassword);
    auditor = await tokenFor(c, `audrey-${sfx}`, userPassword);
  });

  it("refuses calls without credentials or with a bad token", async () => {
    const none = await c.call(UserService, "ListUsers", {});
    expect(none).toMatchObject({ ok: false, code: "unauthenticated", status: transport === "http" ? 401 : grpc.status.UNAUTHENTICATED });
    const bad = await c.call(UserService, "ListUsers", {}, { bearer: `trv_${"0".repeat(16)}_${"A".repeat(43)}` });
    expect(bad).toMatchObject({ ok: false, code: "unauthenticated", reason: "token_invalid" });
  });

  it("lets an Auditor read (the audit log included) but not change anything, and audits the refusal", async () => {
    expect(await c.call(UserService, "ListUsers", {}, auditor)).toMatchObject({ ok: true });
    expect(await c.call(AuditService, "ListAuditEntries", {}, auditor)).toMatchObject({ ok: true });
    const r = await c.call(UserService, "CreateUser", { username: `x-${sfx}`, password: userPassword, role: "ROLE_AUDITOR" }, auditor);
    expect(r).toMatchObject({ ok: false, code: "permission_denied", reason: "users.manage", status: transport === "http" ? 403 : grpc.status.PERMISSION_DENIED });
    expect(r.ok === false && r.message).toContain(`"audrey-${sfx}" (Auditor) lacks permission "users.manage"`);
    const denied = await auditEntries(c, admin, { principal: `audrey-${sfx}` });
    expect(denied).toContainEqual(expect.objectContaining({ action: "UserService.CreateUser", object: `user/x-${sfx}`, result: "permission_denied" }));
    const users = await c.call(UserService, "ListUsers", {}, admin);
    expect(users.ok && (users.body.users as { username: string }[]).map((u) => u.username)).not.toContain(`x-${sfx}`);
  });

  it("lets an Operator read users but not manage them, unless a grant widens its role on that user", async () => {
    expect(await c.call(UserService, "ListUsers", {}, operator)).toMatchObject({ ok: true });
    for (const [method, req] of [["CreateUser", { username: `y-${sfx}`, password: userPassword, role: "ROLE_OPERATOR" }], ["DeleteUser", { username: `audrey-${sfx}` }],
      ["UpdateUser", { username: `audrey-${sfx}`, role: "ROLE_ADMINISTRATOR" }], ["SetGrant", { grant: { username: `olive-${sfx}`, objectKind: "user", objectId: "*", role: "ROLE_ADMINISTRATOR" } }]] as const) {
      expect(await c.call(UserService, method, req, operator)).toMatchObject({ ok: false, code: "permission_denied" });
    }
    expect(await c.call(AuthService, "ListApiTokens", { username: `audrey-${sfx}` }, operator)).toMatchObject({ ok: false, code: "permission_denied", reason: "tokens.manage" });
    const grant = { username: `olive-${sfx}`, objectKind: "user", objectId: `audrey-${sfx}`, role: "ROLE_ADMINISTRATOR" };
    expect(await c.call(UserService, "SetGrant", { grant }, admin)).toMatchObject({ ok: true });
    expect(await c.call(UserService, "UpdateUser", { username: `audrey-${sfx}`, disabled: false }, operator)).toMatchObject({ ok: true });
    expect(await c.call(UserService, "DeleteUser", { username: "admin" }, operator)).toMatchObject({ ok: false, code: "permission_denied" });
    expect(await c.call(UserService, "SetGrant", { grant: { ...grant, role: "ROLE_UNSPECIFIED" } }, admin)).toMatchObject({ ok: true });
    expect(await c.call(UserService, "UpdateUser", { username: `audrey-${sfx}`, disabled: false }, operator)).toMatchObject({ ok: false, code: "permission_denied" });
  });

  it("refuses bad input naming the field, and changes nothing", async () => {
    const usersBefore = await c.call(UserService, "ListUsers", {}, admin);
    const auditBefore = (await auditEntries(c, admin)).length;
    const cases = [
      [{ username: "Bad Name!", password: userPassword, role: "ROLE_OPERATOR" }, "username", "must be 1–64 characters of a-z, 0-9, ., _, -"],
      [{ username: `z-${sfx}`, password: "short", role: "ROLE_OPERATOR" }, "password", "must be 12–256 characters"],
      [{ username: `z-${sfx}`, password: userPassword, role: "ROLE_UNSPECIFIED" }, "role", "must be one of ROLE_ADMINISTRATOR"],
      [{ username: `z-${sfx}`, password: userPassword, role: 42 }, "role", "must be one of"],
    ] as const;
    for (const [req, field, reason] of cases) {
      const r = await c.call(UserService, "CreateUser", req, admin);
      expect(r).toMatchObject({ ok: false, code: "invalid_argument", field, status: transport === "http" ? 400 : grpc.status.INVALID_ARGUMENT });
      expect(r.ok === false && r.message).toContain(`field "${field}": ${reason}`);
    }
    expect(await c.call(UserService, "ListUsers", {}, admin)).toMatchObject({ ok: true, body: (usersBefore as { body: unknown }).body });
    expect((await auditEntries(c, admin)).length).toBe(auditBefore + 0);
  });

  it("records every successful mutation in the audit log with principal, action, object and result", async () => {
    const name = `carol-${sfx}`;
    const created = await c.call(UserService, "CreateUser", { username: name, password: userPassword, role: "ROLE_AUDITOR" }, admin);
    expect(created).toMatchObject({ ok: true, body: { user: { username: name, role: "ROLE_AUDITOR", disabled: false } } });
    expect(await c.call(UserService, "UpdateUser", { username: name, role: "ROLE_OPERATOR" }, admin)).toMatchObject({ ok: true, body: { user: { role: "ROLE_OPERATOR" } } });
    expect(await c.call(UserService, "DeleteUser", { username: name }, admin)).toMatchObject({ ok: true });
    const entries = await auditEntries(c, admin, { object: `user/${name}` });
    expect(entries.map((e) => [e.principal, e.action, e.result])).toEqual([
      ["admin", "UserService.DeleteUser", "ok"], ["admin", "UserService.UpdateUser", "ok"], ["admin", "UserService.CreateUser", "ok"],
    ]);
    expect(JSON.parse(entries[2]!.detailJson)).toMatchObject({ transport, role: "auditor" });
    expect(entries.map((e) => e.detailJson).join()).not.toContain(userPassword);
  });

  it("throttles repeated failed logins, even with the right password, with a retry-after", async () => {
    const name = `olive-${sfx}`;
    for (let i = 0; i < 3; i++) expect(await c.call(AuthService, "Login", { username: name, password: "wrong password!", kind: "CREDENTIAL_KIND_TOKEN" })).toMatchObject({ ok: false, code: "unauthenticated" });
    const r = await c.call(AuthService, "Login", { username: name, password: userPassword, kind: "CREDENTIAL_KIND_TOKEN" });
    expect(r).toMatchObject({ ok: false, code: "resource_exhausted", reason: "login_throttled", status: transport === "http" ? 429 : grpc.status.RESOURCE_EXHAUSTED });
    if (transport === "http") expect(Number(r.headers["retry-after"])).toBeGreaterThan(0);
    else expect(Number(r.headers["retry-after-ms"])).toBeGreaterThan(0);
    // The existing token of the locked-out user still works: the lock-out is about guessing passwords.
    expect(await c.call(AuthService, "WhoAmI", {}, operator)).toMatchObject({ ok: true, body: { user: { username: name } } });
  });

  it("refuses a revoked API token at once", async () => {
    const created = await c.call(AuthService, "CreateApiToken", { name: "ci job" }, auditor);
    expect(created).toMatchObject({ ok: true, body: { token: { name: "ci job", username: `audrey-${sfx}` } } });
    const body = okBody<{ secret: string; token: { id: string } }>(created);
    const token: Creds = { bearer: body.secret };
    const id = body.token.id;
    expect(await c.call(AuthService, "WhoAmI", {}, token)).toMatchObject({ ok: true, body: { user: { role: "ROLE_AUDITOR" }, credential: "CREDENTIAL_KIND_TOKEN" } });
    expect(await c.call(AuthService, "RevokeApiToken", { id }, operator)).toMatchObject({ ok: false, code: "permission_denied" });
    expect(await c.call(AuthService, "RevokeApiToken", { id }, auditor)).toMatchObject({ ok: true });
    expect(await c.call(AuthService, "WhoAmI", {}, token)).toMatchObject({ ok: false, code: "unauthenticated", reason: "token_revoked" });
    const listed = await c.call(AuthService, "ListApiTokens", { username: `audrey-${sfx}`, includeRevoked: true }, admin);
    expect(listed.ok && (listed.body.tokens as { id: string; revokedAtMs: string }[]).find((t) => t.id === id)?.revokedAtMs).not.toBe("0");
  });

  it("refuses a disabled user's existing credentials", async () => {
    const name = `dave-${sfx}`;
    expect(await c.call(UserService, "CreateUser", { username: name, password: userPassword, role: "ROLE_AUDITOR" }, admin)).toMatchObject({ ok: true });
    const dave = await tokenFor(c, name, userPassword);
    expect(await c.call(AuthService, "WhoAmI", {}, dave)).toMatchObject({ ok: true });
    expect(await c.call(UserService, "UpdateUser", { username: name, disabled: true }, admin)).toMatchObject({ ok: true });
    expect(await c.call(AuthService, "WhoAmI", {}, dave)).toMatchObject({ ok: false, code: "unauthenticated", reason: "user_disabled" });
  });

  it("returns the applied index, and serves linearizable reads on request", async () => {
    const r = await c.call(UserService, "GetUser", { username: "admin" }, { ...admin, linearizable: true });
    expect(r).toMatchObject({ ok: true, body: { user: { username: "admin", role: "ROLE_ADMINISTRATOR" } } });
    expect(r.ok && r.appliedIndex).toBeLessThanOrEqual(replica.stateMachine.appliedIndex);
    expect(r.ok && r.appliedIndex).toBeGreaterThan(0);
  });

  it("streams events, and validates and authorizes a stream before it starts", async () => {
    const r = await c.stream(EventService, "Watch", { objectPrefix: "vm/" }, auditor);
    expect(r).toEqual({ ok: true, messages: [1, 2, 3].map((i) => ({ id: String(i), timeMs: String(1000 * i), kind: "vm.state", object: `vm/web${i}`, message: `web${i} running`, fields: { n: String(i) } })) });
    expect(await c.stream(EventService, "Watch", { objectPrefix: "VM!" }, auditor)).toMatchObject({ ok: false, code: "invalid_argument", field: "object_prefix" });
    expect(await c.stream(EventService, "Watch", {}, {})).toMatchObject({ ok: false, code: "unauthenticated" });
  });
});

describe("browser sessions over HTTP", () => {
  it("sets an HttpOnly, Secure, SameSite=Strict cookie, keeps the id out of the body, and needs the CSRF token for changes", async () => {
    const c = clients.find((x) => x.transport === "http")!;
    const r = await login(c, "admin", adminPassword, "CREDENTIAL_KIND_SESSION");
    const cookie = r.headers["set-cookie"] ?? "";
    expect(cookie).toMatch(/^trivet_session=[A-Za-z0-9_-]{43};/);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/Secure/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(r.body.sessionId).toBe("");
    const id = /^trivet_session=([^;]+)/.exec(cookie)![1]!;
    const csrf = r.body.csrfToken as string;
    expect(await c.call(AuthService, "WhoAmI", {}, { session: { id } })).toMatchObject({ ok: true, body: { credential: "CREDENTIAL_KIND_SESSION" } });
    const before = (await auditEntries(c, { session: { id } })).length;
    const missing = await c.call(AuthService, "CreateApiToken", { name: "from browser" }, { session: { id } });
    expect(missing).toMatchObject({ ok: false, code: "permission_denied", reason: "csrf_missing", status: 403 });
    expect(await c.call(AuthService, "CreateApiToken", { name: "from browser" }, { session: { id, csrf: "x".repeat(43) } })).toMatchObject({ ok: false, reason: "csrf_mismatch" });
    expect((await auditEntries(c, { session: { id } })).length).toBe(before);
    expect(await c.call(AuthService, "CreateApiToken", { name: "from browser" }, { session: { id, csrf } })).toMatchObject({ ok: true });
    const sse = await fetch(`${httpBase}/api/v1/EventService/Watch?request=${encodeURIComponent(JSON.stringify({ objectPrefix: "vm/" }))}`, { headers: { cookie: `trivet_session=${id}` } });
    expect(sse.headers.get("content-type")).toMatch(/^text\/event-stream/);
    expect((await sse.text()).split("\n").filter((l) => l.startsWith("data:")).map((l) => (JSON.parse(l.slice(5)) as { object: string }).object)).toEqual(["vm/web1", "vm/web2", "vm/web3"]);
    const logins = await auditEntries(c, { session: { id } }, { action_prefix: "AuthService.Login", principal: "admin" });
    expect(logins[0]).toMatchObject({ object: "user/admin", result: "ok" });
    expect(JSON.parse(logins[0]!.detailJson)).toMatchObject({ kind: "session", transport: "http" });
    expect(await c.call(AuthService, "Logout", {}, { session: { id, csrf } })).toMatchObject({ ok: true });
    expect(await c.call(AuthService, "WhoAmI", {}, { session: { id } })).toMatchObject({ ok: false, code: "unauthenticated", reason: "session_invalid" });
  });

  it("lets a gRPC client use a session id as a bearer credential (no cookie, so no CSRF)", async () => {
    const c = clients.find((x) => x.transport === "grpc")!;
    const r = await login(c, "admin", adminPassword, "CREDENTIAL_KIND_SESSION");
    expect(r.body.sessionId).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await c.call(AuthService, "CreateApiToken", { name: "cli" }, { bearer: r.body.sessionId as string })).toMatchObject({ ok: true });
  });

  it("answers unknown methods and malformed JSON with the error model", async () => {
    const c = clients.find((x) => x.transport === "http")!;
    const res = await c.call({ ...UserService, name: "NoSuchService" } as typeof UserService, "ListUsers", {});
    expect(res).toMatchObject({ ok: false, code: "not_found", status: 404 });
    expect(await c.call(UserService, "CreateUser", { username: "a", nope: 1 } as never, {})).toMatchObject({ ok: false, code: "invalid_argument", field: "nope" });
  });
});
