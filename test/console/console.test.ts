// The console transports end to end against the real HTTPS server and a real replica: a fake
// serial console (a unix socket that greets and echoes) proxied over a WebSocket and over the
// gRPC bidi stream; who may open what (no credentials 401 before the upgrade, Auditor 403,
// foreign Origin 403, missing CSRF 403); the administrators' host shell through node-pty; the
// bounded buffers under a burst; the idle timeout; malformed control messages.
import * as grpc from "@grpc/grpc-js";
import crypto from "node:crypto";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openConsole } from "../../core/api/console/grpc-client.ts";
import { consoleSession } from "../../cmd/console.ts";
import { closeCodes } from "../../core/api/console/bridge.ts";
import { fakeGreeting, startFixture, type Fixture } from "./fixture.ts";
import { closed, connectWs, waitFor, type WsAuth } from "./ws-client.ts";

let f: Fixture;
let idle: Fixture;
const serial = "/api/v1/console/serial/web1";

beforeAll(async () => {
  f = await startFixture({ maxBufferedBytes: 64 * 1024, idleTimeoutMs: 60_000 });
  idle = await startFixture({ maxBufferedBytes: 64 * 1024, idleTimeoutMs: 300 });
}, 60_000);

afterAll(async () => {
  await f?.close();
  await idle?.close();
});

async function open(pathname: string, auth: WsAuth, fx = f) {
  const r = await connectWs(fx.httpsPort, fx.caPem, pathname, auth);
  if (!r.ok) throw new Error(`expected ${pathname} to open, got ${r.status}: ${r.body}`);
  return r;
}

async function refusedWith(pathname: string, auth: WsAuth): Promise<{ status: number; code: string; reason?: string }> {
  const r = await connectWs(f.httpsPort, f.caPem, pathname, auth);
  if (r.ok) {
    r.ws.close();
    throw new Error(`expected ${pathname} to be refused`);
  }
  const e = (JSON.parse(r.body) as { error: { code: string; reason?: string } }).error;
  return { status: r.status, code: e.code, reason: e.reason };
}

describe("serial console over WebSocket", () => {
  it("carries bytes both ways for an administrator's API token", async () => {
    const c = await open(serial, { bearer: f.tokens.admin });
    await waitFor(c.received, fakeGreeting, "greeting");
    const typed = `typed-${crypto.randomUUID()}\n`;
    c.ws.send(Buffer.from(typed));
    await waitFor(c.received, typed, "echo");
    await waitFor(f.serialReceived, typed, "serial side");
    c.ws.close();
  });

  it("opens for a browser session with the CSRF token in the subprotocols and a same-host Origin", async () => {
    const c = await open(serial, { session: f.adminSession, origin: `https://127.0.0.1:${f.httpsPort}`, protocols: ["binary"] });
    expect(c.ws.protocol).toBe("binary");
    await waitFor(c.received, fakeGreeting, "greeting");
    c.ws.close();
  });

  it("proxies the VNC socket the way noVNC connects (cookie, CSRF subprotocol, \"binary\")", async () => {
    const c = await open("/api/v1/console/vnc/web1", { session: f.adminSession, origin: `https://127.0.0.1:${f.httpsPort}`, protocols: ["binary"] });
    expect(c.ws.protocol).toBe("binary");
    await waitFor(c.received, fakeGreeting, "greeting");
    c.ws.send(Buffer.from([0x03, 0x00, 0x01, 0x02]));
    await waitFor(f.serialReceived, "\x03\x00\x01\x02", "bytes at the VNC socket");
    c.ws.close();
    expect(await refusedWith("/api/v1/console/vnc/far", { bearer: f.tokens.admin })).toMatchObject({ status: 404, reason: "vm_not_found" });
  });

  it("lets an Operator in and keeps an Auditor out", async () => {
    const c = await open(serial, { bearer: f.tokens.operator });
    await waitFor(c.received, fakeGreeting, "greeting");
    c.ws.close();
    expect(await refusedWith(serial, { bearer: f.tokens.auditor })).toMatchObject({ status: 403, code: "permission_denied", reason: "vm.console" });
  });

  it("refuses before the upgrade: no credentials, bad token, no CSRF, foreign or missing Origin", async () => {
    expect(await refusedWith(serial, {})).toMatchObject({ status: 401, code: "unauthenticated" });
    expect(await refusedWith(serial, { bearer: "not-a-session" })).toMatchObject({ status: 401, code: "unauthenticated" });
    const origin = `https://127.0.0.1:${f.httpsPort}`;
    expect(await refusedWith(serial, { session: { id: f.adminSession.id }, origin })).toMatchObject({ status: 403, reason: "csrf_missing" });
    expect(await refusedWith(serial, { session: { id: f.adminSession.id, csrf: "wrong" }, origin })).toMatchObject({ status: 403, reason: "csrf_mismatch" });
    expect(await refusedWith(serial, { session: f.adminSession, origin: "https://evil.example", protocols: ["binary"] })).toMatchObject({ status: 403, reason: "origin_mismatch" });
    expect(await refusedWith(serial, { session: f.adminSession, protocols: ["binary"] })).toMatchObject({ status: 403, reason: "origin_missing" });
    expect(await refusedWith(serial, { bearer: f.tokens.admin, origin: "https://evil.example" })).toMatchObject({ status: 403, reason: "origin_mismatch" });
  });

  it("names unknown VMs, VMs on other nodes and unknown routes", async () => {
    expect(await refusedWith("/api/v1/console/serial/nope", { bearer: f.tokens.admin })).toMatchObject({ status: 404, reason: "vm_not_found" });
    expect(await refusedWith("/api/v1/console/serial/far", { bearer: f.tokens.admin })).toMatchObject({ status: 412, reason: "wrong_node" });
    expect(await refusedWith("/api/v1/console/bogus/web1", { bearer: f.tokens.admin })).toMatchObject({ status: 404, reason: "no_route" });
  });

  it("delivers a burst far larger than the buffer bound, in order", async () => {
    const c = await open(serial, { bearer: f.tokens.admin });
    await waitFor(c.received, fakeGreeting, "greeting");
    const burst = crypto.randomBytes(4 * 1024 * 1024);
    f.serialBlast(burst);
    const deadline = Date.now() + 20_000;
    while (c.received().length < fakeGreeting.length + burst.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(c.received().subarray(fakeGreeting.length).equals(burst)).toBe(true);
    c.ws.close();
  });

  it("closes with 1003 on a malformed control message and 4008 when idle", async () => {
    const c = await open(serial, { bearer: f.tokens.admin });
    const end = closed(c.ws);
    c.ws.send("{\"type\":\"explode\"}");
    expect((await end).code).toBe(closeCodes.unsupportedData);
    const i = await open(serial, { bearer: idle.tokens.admin }, idle);
    expect(await closed(i.ws)).toMatchObject({ code: closeCodes.idle });
  });
});

describe("host shell over WebSocket", () => {
  it("is for administrators only", async () => {
    expect(await refusedWith("/api/v1/console/shell/n1", { bearer: f.tokens.operator })).toMatchObject({ status: 403, reason: "host.shell" });
    expect(await refusedWith("/api/v1/console/shell/n2", { bearer: f.tokens.admin })).toMatchObject({ status: 412, reason: "wrong_node" });
  });

  it("runs a command for an administrator and resizes", async () => {
    const c = await open("/api/v1/console/shell/n1", { bearer: f.tokens.admin });
    c.ws.send(JSON.stringify({ type: "resize", cols: 123, rows: 45 }));
    // Computed by the shell, so the echo of the typed line cannot satisfy the wait.
    c.ws.send(Buffer.from("echo hi-$((40+2)) size-$(tput cols 2>/dev/null || stty size | cut -d' ' -f2)\n"));
    await waitFor(c.received, "hi-42 size-123", "shell output");
    const end = closed(c.ws);
    c.ws.send(Buffer.from("exit\n"));
    expect((await end).code).toBe(closeCodes.normal);
  });
});

describe("serial console over gRPC", () => {
  const client = () => new grpc.Client(f.grpcAddress, grpc.credentials.createInsecure());

  it("round-trips bytes", async () => {
    const c = client();
    const got: Buffer[] = [];
    const s = openConsole(c, "web1", { token: f.tokens.operator, onData: (d) => got.push(Buffer.from(d)) });
    await waitFor(() => Buffer.concat(got), fakeGreeting, "greeting");
    const typed = `grpc-${crypto.randomUUID()}\n`;
    s.write(Buffer.from(typed));
    await waitFor(() => Buffer.concat(got), typed, "echo");
    s.close();
    await s.done;
    c.close();
  });

  it("refuses an Auditor, no credentials and unknown VMs with the API's codes", async () => {
    const c = client();
    const attempt = (vm: string, token?: string) => openConsole(c, vm, { token, onData: () => {} }).done;
    await expect(attempt("web1", f.tokens.auditor)).rejects.toMatchObject({ code: "permission_denied", reason: "vm.console" });
    await expect(attempt("web1")).rejects.toMatchObject({ code: "unauthenticated" });
    await expect(attempt("nope", f.tokens.admin)).rejects.toMatchObject({ code: "not_found", reason: "vm_not_found" });
    c.close();
  });

  it("drives `trivet vm console`: keys go through, Ctrl-] detaches without sending itself", async () => {
    const c = client();
    const input = new PassThrough();
    const out: Buffer[] = [];
    const session = consoleSession({ client: c, vm: "web1", token: f.tokens.admin, input, output: { write: (d: Uint8Array) => out.push(Buffer.from(d)) } });
    await waitFor(() => Buffer.concat(out), fakeGreeting, "greeting");
    const typed = `cli-${crypto.randomUUID()}`;
    input.write(`${typed}\x1d`);
    expect(await session).toBe("detached");
    await waitFor(f.serialReceived, typed, "keys typed before the detach");
    expect(f.serialReceived().includes(0x1d)).toBe(false);
    c.close();
  });
});
