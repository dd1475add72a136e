// Integration: the test guest under QEMU/TCG does what later tests rely on — it reaches its
// ready marker, persists a boot counter on a virtio disk across boots, brings up a virtio NIC
// with the MAC from the QEMU command line, runs a shell on the serial console, and powers off
// cleanly when QMP presses the ACPI power button.
import { createConnection } from "node:net";
import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { bootGuest, ensureGuest, guestReadyMarker } from "./guest.ts";
import type { Guest } from "./guest.ts";

/** TCG reaches userspace in ~2 s here; leave room for a loaded 2-core machine. */
const bootTimeoutMs = 60_000;
const shellTimeoutMs = 15_000;
const poweroffTimeoutMs = 30_000;
const qmpTimeoutMs = 10_000;
const diskBytes = 16 * 1024 * 1024;

const ready = new RegExp(`^${guestReadyMarker}$`);
let workDir = "";
const guests: Guest[] = [];

async function boot(opts: Parameters<typeof bootGuest>[0]): Promise<Guest> {
  const guest = await bootGuest(opts);
  guests.push(guest);
  return guest;
}

/** Minimal QMP exchange (greeting, qmp_capabilities, one command); the real QMP layer lives in core/host/qemu. */
function qmpExecute(socketPath: string, command: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`QMP ${command}: no answer after ${qmpTimeoutMs} ms`));
    }, qmpTimeoutMs);
    let buffered = "";
    let step = 0;
    socket.on("error", (err) => { clearTimeout(timer); reject(err); });
    socket.on("data", (chunk) => {
      buffered += chunk.toString("utf8");
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const msg = JSON.parse(buffered.slice(0, nl)) as { QMP?: unknown; return?: unknown; error?: { desc: string }; event?: string };
        buffered = buffered.slice(nl + 1);
        if (msg.event) continue;
        if (msg.error) {
          clearTimeout(timer);
          socket.destroy();
          reject(new Error(`QMP ${command}: ${msg.error.desc}`));
          return;
        }
        if (step === 0 && msg.QMP) socket.write(`${JSON.stringify({ execute: "qmp_capabilities" })}\n`);
        else if (step === 1) socket.write(`${JSON.stringify({ execute: command })}\n`);
        else {
          clearTimeout(timer);
          socket.end();
          resolve(msg.return);
          return;
        }
        step++;
      }
    });
  });
}

beforeAll(async () => {
  await ensureGuest();
  workDir = await mkdtemp(join(tmpdir(), "trivet-guest-test-"));
});

afterEach(async () => {
  await Promise.all(guests.splice(0).map((g) => g.dispose()));
});

afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
});

async function powerdown(guest: { qmpSocketPath?: string; waitForExit(ms: number): Promise<unknown> }): Promise<void> {
  const pressEveryMs = 5_000;
  for (let waited = 0; ; waited += pressEveryMs) {
    await qmpExecute(guest.qmpSocketPath ?? "", "system_powerdown").catch(() => undefined);
    try {
      await guest.waitForExit(pressEveryMs);
      return;
    } catch (err) {
      if (waited + pressEveryMs >= poweroffTimeoutMs * 2) throw err;
    }
  }
}

describe("test guest", () => {
  it("boots under TCG to its ready marker with its status lines", async () => {
    const guest = await boot({});
    const marker = await guest.waitForLine(ready, bootTimeoutMs);
    const before = guest.lines().slice(0, marker.index);
    expect(before).toContain("disk=none");
    expect(before.some((l) => /^kernel=\d+\.\d+/.test(l))).toBe(true);
    expect(before).toContain("acpi_power_button=ready");
  });

  it("reads on the next boot the boot counter a previous boot wrote to its virtio disk", async () => {
    const disk = join(workDir, "counter.raw");
    const file = await open(disk, "w");
    await file.truncate(diskBytes);
    await file.close();
    const counts: number[] = [];
    for (let bootNo = 0; bootNo < 2; bootNo++) {
      const guest = await boot({ disk, qmp: true });
      const status = await guest.waitForLine(/^disk=vda disk_bytes=(\d+) boot_count=(\d+) write=(\w+)$/, bootTimeoutMs);
      expect(Number(status.match[1])).toBe(diskBytes);
      expect(status.match[3]).toBe("ok");
      counts.push(Number(status.match[2]));
      await guest.waitForLine(ready, bootTimeoutMs);
      // A clean ACPI shutdown, so the write reaches the file before the next boot opens it. The
      // button is pressed again while the guest lives: under heavy load the first press can
      // arrive before its handler runs, as on real hardware.
      await powerdown(guest);
    }
    expect(counts).toEqual([0, 1]);
  });

  it("brings up eth0 with the MAC from the QEMU command line and the static address", async () => {
    const mac = "52:54:00:7a:11:3c";
    const guest = await boot({ mac, ip: "10.0.2.15/24" });
    const net = await guest.waitForLine(/^net=eth0 mac=(\S+) state=(\S+) ip=(\S+)$/, bootTimeoutMs);
    expect(net.match.slice(1)).toEqual([mac, "up", "10.0.2.15/24"]);
  });

  it("runs a shell on the serial console", async () => {
    const guest = await boot({});
    const marker = await guest.waitForLine(ready, bootTimeoutMs);
    // Arithmetic, so that the echo of the typed command cannot satisfy the wait.
    guest.write("echo trivet-$((6 * 7))\n");
    const out = await guest.waitForLine(/^trivet-(\d+)$/, shellTimeoutMs, marker.index + 1);
    expect(out.match[1]).toBe("42");
  });

  it("powers off by itself when QMP presses the ACPI power button", async () => {
    const guest = await boot({ qmp: true });
    await guest.waitForLine(ready, bootTimeoutMs);
    await qmpExecute(guest.qmpSocketPath ?? "", "system_powerdown");
    await guest.waitForLine(/^TRIVET-GUEST-POWEROFF reason=acpi-power-button$/, poweroffTimeoutMs);
    const exit = await guest.waitForExit(poweroffTimeoutMs);
    expect(exit).toEqual({ code: 0, signal: null });
  });

  it("prints heartbeats with a rising uptime when asked to", async () => {
    const guest = await boot({ heartbeat: true });
    const marker = await guest.waitForLine(ready, bootTimeoutMs);
    const beat = await guest.waitForLine(/^heartbeat uptime=(\d+\.\d+)$/, shellTimeoutMs, marker.index + 1);
    const next = await guest.waitForLine(/^heartbeat uptime=(\d+\.\d+)$/, shellTimeoutMs, beat.index + 1);
    expect(Number(next.match[1])).toBeGreaterThan(Number(beat.match[1]));
  });
});
