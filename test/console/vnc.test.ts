// The VNC display of a real QEMU (`-vnc unix:<socket>`, as the host agent configures it) through
// the console WebSocket /api/v1/console/vnc/<vm>, spoken to as noVNC does: subprotocol "binary",
// binary frames both ways. The proxy is a plain byte pipe, so the whole RFB 3.8 opening — the
// server's version greeting, security "None", ServerInit with the framebuffer size and the
// desktop name — must come through intact.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureGuest, guestArgv } from "../guest/guest.ts";
import { startFixture, type Fixture } from "./fixture.ts";
import { connectWs, waitFor } from "./ws-client.ts";

const socketWaitMs = 15_000;
const rfbWaitMs = 10_000;

let f: Fixture;
let qemu: ChildProcess | undefined;
let runDir: string;
let stderr = "";

beforeAll(async () => {
  const image = await ensureGuest();
  runDir = fs.mkdtempSync(path.join(os.tmpdir(), "trivet-console-vnc-"));
  const sock = path.join(runDir, "vnc.sock");
  const argv = guestArgv(image, {}).filter((a, i, all) => !(a === "-display" || all[i - 1] === "-display"));
  argv.push("-name", "vncguest", "-device", "VGA", "-vnc", `unix:${sock}`);
  f = await startFixture(undefined, {}, { vncguest: sock });
  qemu = spawn("qemu-system-x86_64", argv, { stdio: ["ignore", "ignore", "pipe"] });
  qemu.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const deadline = Date.now() + socketWaitMs;
  while (!fs.existsSync(sock)) {
    if (Date.now() > deadline || qemu.exitCode !== null) throw new Error(`QEMU made no VNC socket within ${socketWaitMs} ms: ${stderr}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}, socketWaitMs + 60_000);

afterAll(async () => {
  qemu?.kill("SIGKILL");
  await f?.close();
  if (runDir) fs.rmSync(runDir, { recursive: true, force: true });
});

/** Waits until at least `n` bytes arrived after `from`; returns them. */
async function bytes(read: () => Buffer, from: number, n: number, what: string): Promise<Buffer> {
  const deadline = Date.now() + rfbWaitMs;
  while (read().length < from + n) {
    if (Date.now() > deadline) throw new Error(`${what}: ${read().length - from} of ${n} bytes within ${rfbWaitMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return read().subarray(from, from + n);
}

describe("the VNC WebSocket", () => {
  it("carries QEMU's RFB handshake both ways as binary frames", async () => {
    const c = await connectWs(f.httpsPort, f.caPem, "/api/v1/console/vnc/vncguest", { bearer: f.tokens.operator, protocols: ["binary"] });
    if (!c.ok) throw new Error(`VNC console refused: ${c.status} ${c.body}`);
    expect(c.ws.protocol).toBe("binary");
    await waitFor(c.received, "RFB 003.008\n", "RFB greeting", rfbWaitMs);
    let at = 12;
    c.ws.send(Buffer.from("RFB 003.008\n"));
    const count = (await bytes(c.received, at, 1, "security types"))[0]!;
    const types = await bytes(c.received, at + 1, count, "security types");
    at += 1 + count;
    expect([...types]).toContain(1);
    c.ws.send(Buffer.from([1]));
    expect((await bytes(c.received, at, 4, "security result")).readUInt32BE(0)).toBe(0);
    at += 4;
    // ClientInit (shared), then ServerInit: width, height, 16 bytes of pixel format, name.
    c.ws.send(Buffer.from([1]));
    const init = await bytes(c.received, at, 24, "ServerInit");
    const [width, height, nameLength] = [init.readUInt16BE(0), init.readUInt16BE(2), init.readUInt32BE(20)];
    expect(width).toBeGreaterThan(0);
    expect(height).toBeGreaterThan(0);
    const name = (await bytes(c.received, at + 24, nameLength, "desktop name")).toString("utf8");
    expect(name).toContain("vncguest");
    c.ws.close();
  }, rfbWaitMs * 4);
});
