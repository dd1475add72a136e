// The serial console of a real guest (test/guest, QEMU under TCG) through the console
// WebSocket: QEMU's serial is a unix socket (chardev server=on,wait=off, as the host agent
// configures it), the marker TRIVET-GUEST-READY arrives through the WebSocket, and a command
// typed into the guest's shell answers through it.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, it } from "vitest";
import { ensureGuest, guestArgv, guestReadyMarker } from "../guest/guest.ts";
import { startFixture, type Fixture } from "./fixture.ts";
import { connectWs, waitFor } from "./ws-client.ts";

const socketWaitMs = 10_000;
const bootWaitMs = 120_000;

let f: Fixture;
let qemu: ChildProcess | undefined;
let runDir: string;
let stderr = "";

beforeAll(async () => {
  const image = await ensureGuest();
  runDir = fs.mkdtempSync(path.join(os.tmpdir(), "trivet-console-guest-"));
  const sock = path.join(runDir, "serial.sock");
  const argv = guestArgv(image, {}).map((a) => (a === "stdio,id=serial0,signal=off" ? `socket,id=serial0,path=${sock},server=on,wait=off` : a));
  f = await startFixture(undefined, { guest1: sock });
  qemu = spawn("qemu-system-x86_64", argv, { stdio: ["ignore", "ignore", "pipe"] });
  qemu.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const deadline = Date.now() + socketWaitMs;
  while (!fs.existsSync(sock)) {
    if (Date.now() > deadline) throw new Error(`QEMU made no serial socket within ${socketWaitMs} ms: ${stderr}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}, bootWaitMs + 60_000);

afterAll(async () => {
  qemu?.kill("SIGKILL");
  await f?.close();
  if (runDir) fs.rmSync(runDir, { recursive: true, force: true });
});

describe("a real guest's serial console over the WebSocket", () => {
  it("shows the guest's marker and runs what is typed", async () => {
    const c = await connectWs(f.httpsPort, f.caPem, "/api/v1/console/serial/guest1", { bearer: f.tokens.operator });
    if (!c.ok) throw new Error(`console refused: ${c.status} ${c.body}`);
    await waitFor(c.received, guestReadyMarker, "guest boot", bootWaitMs);
    // Computed by the guest's shell, so the echo of the typed line cannot satisfy the wait.
    c.ws.send(Buffer.from("echo hi-$((40+2))\n"));
    await waitFor(c.received, "hi-42", "guest shell", 20_000);
    c.ws.close();
  }, bootWaitMs + 30_000);
});
