// Integration test of the QEMU runtime with the real test guest under TCG: the argv comes from
// the command-line builder (direct kernel boot, a raw virtio disk, a user-mode NIC, the serial
// console on a unix socket). Start, pause and resume, ACPI shutdown, forced stop, a failed
// start reporting QEMU's own error, and re-attaching after a simulated daemon restart. No QEMU
// outlives a test: every pid seen is killed in afterEach.
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { gatherQemuHostFacts } from "../../core/host/qemu/host-facts.ts";
import { processAlive } from "../../core/host/qemu/proc.ts";
import { attachVm, startVm } from "../../core/host/qemu/runtime.ts";
import type { QemuRuntime } from "../../core/host/qemu/runtime.ts";
import type { QemuHostFacts, VmSpec } from "../../core/host/qemu/spec.ts";
import { ensureGuest } from "../guest/guest.ts";
import type { GuestImage } from "../guest/guest.ts";
import { SerialReader } from "./serial.ts";

/** A TCG boot of the test guest takes a few seconds; a loaded 2-core machine, much more. */
const bootTimeoutMs = 90_000;
/** The guest prints a heartbeat every 3 s (init.sh). */
const heartbeatPeriodMs = 3000;
const pausedObserveMs = 2 * heartbeatPeriodMs + 1000;
const acpiTimeoutMs = 30_000;
const forcedAfterMs = 2000;
const stateTimeoutMs = 5000;
const killWaitMs = 5000;

const here = dirname(fileURLToPath(import.meta.url));
let image: GuestImage;
let facts: QemuHostFacts;
let baseDir: string;
const pids = new Set<number>();
const readers: SerialReader[] = [];

beforeAll(async () => {
  image = await ensureGuest();
  facts = await gatherQemuHostFacts({ kvmUsable: false });
  baseDir = await mkdtemp(join(tmpdir(), "trivet-vm-"));
});

afterEach(async () => {
  for (const r of readers.splice(0)) r.close();
  for (const pid of pids) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // Already gone.
    }
    const deadline = Date.now() + killWaitMs;
    while ((await processAlive(pid)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await processAlive(pid), `QEMU ${pid} left running`).toBe(false);
  }
  pids.clear();
});

afterAll(async () => {
  if (baseDir) await rm(baseDir, { recursive: true, force: true });
});

let vmCount = 0;

async function guestSpec(): Promise<{ spec: VmSpec; runDir: string }> {
  vmCount++;
  const runDir = join(baseDir, `vm${vmCount}`);
  const disk = join(baseDir, `disk${vmCount}.raw`);
  await writeFile(disk, "");
  await truncate(disk, 16 * 1024 * 1024);
  const spec: VmSpec = {
    name: `guest${vmCount}`,
    uuid: `00000000-0000-4000-8000-${String(vmCount).padStart(12, "0")}`,
    vcpus: 1,
    memoryMiB: 256,
    machineType: "pc-i440fx-7.2",
    cpuModel: "qemu64",
    firmware: { kind: "seabios" },
    accelerator: "tcg",
    disks: [{ id: "root", bus: "virtio-blk", source: { kind: "file", path: disk, format: "raw" }, cache: "writeback", readonly: false, bootIndex: null, serial: null }],
    cdrom: null,
    nics: [{ id: "net0", model: "virtio-net", mac: "52:54:00:00:00:01", backend: { kind: "user" }, bootIndex: null }],
    serial: { socketPath: join(runDir, "serial.sock") },
    graphics: { kind: "none" },
    cloudInitIsoPath: null,
    kernelBoot: { kernelPath: image.kernel, initrdPath: image.initrd, append: "console=ttyS0 quiet panic=-1 trivet.heartbeat=1" },
    qmpSocketPath: join(runDir, "qmp.sock"),
    pidFile: join(runDir, "qemu.pid"),
  };
  return { spec, runDir };
}

async function boot(): Promise<{ rt: QemuRuntime; serial: SerialReader; spec: VmSpec; runDir: string }> {
  const { spec, runDir } = await guestSpec();
  const rt = await startVm(spec, facts, { runDir });
  pids.add(rt.pid);
  const serial = await SerialReader.connect(spec.serial?.socketPath ?? "");
  readers.push(serial);
  await serial.waitForLine(/TRIVET-GUEST-READY/, bootTimeoutMs);
  return { rt, serial, spec, runDir };
}

function waitForState(rt: QemuRuntime, state: string): Promise<void> {
  if (rt.state === state) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`VM ${rt.name} did not reach state ${state} within ${stateTimeoutMs} ms (state ${rt.state})`));
    }, stateTimeoutMs);
    const off = rt.onStateChange((s) => {
      if (s !== state) return;
      clearTimeout(timer);
      off();
      resolve();
    });
  });
}

function heartbeatsAfter(serial: SerialReader, sinceMs: number): number {
  return serial.lines.filter((l) => l.atMs > sinceMs && /^heartbeat uptime=/.test(l.text)).length;
}

describe("QEMU runtime with the test guest", () => {
  it("starts the guest, reports status, pauses and resumes it, and stops it by force", async () => {
    const { rt, serial, spec } = await boot();
    expect(rt.state).toBe("running");
    expect(Number(await readFile(spec.pidFile, "utf8"))).toBe(rt.pid);
    const status = await rt.status();
    expect(status).toMatchObject({ state: "running", pid: rt.pid, exit: null });
    expect(status.cpuTimeMs).toBeGreaterThan(0);
    expect(status.rssBytes).toBeGreaterThan(16 * 1024 * 1024);
    expect(status.uptimeMs).toBeGreaterThan(0);

    await rt.pause();
    await waitForState(rt, "paused");
    const pausedAt = performance.now();
    await new Promise((r) => setTimeout(r, pausedObserveMs));
    expect(heartbeatsAfter(serial, pausedAt), "heartbeats while paused").toBe(0);

    await rt.resume();
    await waitForState(rt, "running");
    const resumedAt = performance.now();
    await serial.waitForLine(/^heartbeat uptime=/, 3 * heartbeatPeriodMs, serial.lines.length);
    expect(heartbeatsAfter(serial, resumedAt)).toBeGreaterThan(0);

    // A paused guest cannot see the power button: the ACPI shutdown falls back to a forced stop.
    await rt.pause();
    await waitForState(rt, "paused");
    expect(await rt.shutdown(forcedAfterMs)).toBe("forced");
    expect(rt.exit?.known).toBe(true);
    expect(rt.state).toBe("stopped");
    expect(await processAlive(rt.pid)).toBe(false);
  });

  it("ACPI shutdown reaches the guest, which powers off, and QEMU exits by itself", async () => {
    const { rt, serial } = await boot();
    const from = serial.lines.length;
    const how = await rt.shutdown(acpiTimeoutMs);
    expect(how).toBe("acpi");
    await serial.waitForLine(/TRIVET-GUEST-POWEROFF reason=acpi-power-button/, 1000, from).catch(() => {
      // The last line may still be in flight when QEMU exits; the exit below is the proof then.
    });
    expect(serial.lines.slice(from).some((l) => l.text.includes("TRIVET-GUEST-POWEROFF"))).toBe(true);
    expect(rt.exit).toEqual({ code: 0, signal: null, known: true });
    expect(rt.state).toBe("shutdown");
  });

  it("re-attaches to a running guest after a daemon restart and can still stop it", async () => {
    const { rt, serial, runDir, spec } = await boot();
    rt.detach();
    // A daemon that forgot it had started the VM must not start a second QEMU for it.
    await expect(startVm(spec, facts, { runDir })).rejects.toMatchObject({ code: "already-running" });
    // QEMU survives its supervisor letting go: the guest keeps printing heartbeats.
    const detachedAt = performance.now();
    await serial.waitForLine(/^heartbeat uptime=/, 3 * heartbeatPeriodMs, serial.lines.length);
    expect(heartbeatsAfter(serial, detachedAt)).toBeGreaterThan(0);

    const again = await attachVm({ runDir });
    expect(again.pid).toBe(rt.pid);
    expect(again.state).toBe("running");
    await again.pause();
    await waitForState(again, "paused");
    await again.resume();
    await waitForState(again, "running");
    expect((await again.status()).cpuTimeMs).toBeGreaterThan(0);
    // The re-attached connection drives the guest: a reset reboots it to the marker again.
    const beforeReset = serial.lines.length;
    await again.reset();
    await serial.waitForLine(/TRIVET-GUEST-READY/, bootTimeoutMs, beforeReset);
    expect(again.state).toBe("running");

    const exit = await again.forceStop();
    expect(exit.known).toBe(false);
    expect(again.state).toBe("stopped");
    expect(await processAlive(rt.pid)).toBe(false);
  });

  it("a guest survives its daemon being killed outright, and a new daemon re-attaches to it", async () => {
    const { spec, runDir } = await guestSpec();
    const specPath = join(baseDir, `${spec.name}.json`);
    await writeFile(specPath, JSON.stringify({ spec, facts }));
    const daemon = spawn(process.execPath, ["--import", "tsx", join(here, "daemon-stand-in.ts"), specPath, runDir], { stdio: ["ignore", "pipe", "inherit"] });
    const daemonExited = new Promise((r) => daemon.once("exit", r));
    try {
      const pid = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the stand-in daemon did not start the VM within ${bootTimeoutMs} ms`)), bootTimeoutMs);
        daemon.stdout.on("data", (chunk: Buffer) => {
          const m = /STARTED (\d+)/.exec(chunk.toString("utf8"));
          if (m?.[1]) {
            clearTimeout(timer);
            resolve(Number(m[1]));
          }
        });
      });
      pids.add(pid);
      const serial = await SerialReader.connect(spec.serial?.socketPath ?? "");
      readers.push(serial);
      daemon.kill("SIGKILL");
      await daemonExited;
      await serial.waitForLine(/TRIVET-GUEST-READY/, bootTimeoutMs);
      expect(await processAlive(pid)).toBe(true);

      const rt = await attachVm({ runDir });
      expect(rt.pid).toBe(pid);
      expect(rt.state).toBe("running");
      await rt.forceStop();
      expect(await processAlive(pid)).toBe(false);
    } finally {
      daemon.kill("SIGKILL");
    }
  });

  it("reports a QEMU killed from outside as crashed, with its exit signal", async () => {
    const { spec, runDir } = await guestSpec();
    const rt = await startVm(spec, facts, { runDir });
    pids.add(rt.pid);
    process.kill(rt.pid, "SIGKILL");
    expect(await rt.waitForExit(killWaitMs)).toEqual({ code: null, signal: "SIGKILL", known: true });
    expect(rt.state).toBe("crashed");
    expect((await rt.status()).uptimeMs).toBeNull();
  });

  it("refuses to re-attach when the pid now belongs to another process", async () => {
    const { spec, runDir } = await guestSpec();
    const rt = await startVm(spec, facts, { runDir });
    pids.add(rt.pid);
    rt.detach();
    await writeFile(spec.pidFile, String(process.pid));
    await expect(attachVm({ runDir })).rejects.toMatchObject({ code: "not-qemu" });
  });

  it("a failed start reports QEMU's own error message", async () => {
    const { spec, runDir } = await guestSpec();
    const broken: VmSpec = { ...spec, disks: spec.disks.map((d) => ({ ...d, source: { kind: "file", path: join(baseDir, "missing.raw"), format: "raw" } })) };
    const err = await startVm(broken, facts, { runDir }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "start-failed" });
    expect((err as Error).message).toMatch(/^starting VM guest\d+: QEMU exited with code 1: .*missing\.raw.*No such file or directory/s);
  });
});
