// Integration test: every golden command line of core/host/qemu/testdata is accepted by the real
// QEMU, and the typed QMP queries read back what the spec asked for (vCPUs, memory, drives).
// The golden paths point at /var/lib/trivet and /run/trivet, so each case's files are created in
// a temporary directory first; host-only parts are swapped for test-friendly ones (a tap NIC for
// user-mode networking, KVM for TCG, a TCP VNC display for a free high one). QEMU starts with -S
// (no guest code runs) and is told to quit.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { runBounded } from "../../core/host/facts.ts";
import { buildQemuArgv } from "../../core/host/qemu/cmdline.ts";
import * as qmp from "../../core/host/qemu/qmp/commands.ts";
import { QmpMonitor } from "../../core/host/qemu/qmp/monitor.ts";
import type { QemuHostFacts, VmSpec } from "../../core/host/qemu/spec.ts";
import { ensureGuest } from "../guest/guest.ts";
import type { GuestImage } from "../guest/guest.ts";

const testdata = join(dirname(fileURLToPath(import.meta.url)), "../../core/host/qemu/testdata");
const qmpReadyTimeoutMs = 15_000;
const qmpPollMs = 25;
const exitWaitMs = 5000;
const toolTimeoutMs = 10_000;
const vncDisplayBase = 4000;
const ovmfVarsTemplate = "/usr/share/OVMF/OVMF_VARS_4M.fd";

interface GoldenCase {
  expect: "argv" | "error";
  spec: VmSpec;
  facts: QemuHostFacts;
}

let baseDir: string;
let image: GuestImage;
const children: ChildProcess[] = [];

beforeAll(async () => {
  baseDir = await mkdtemp(join(tmpdir(), "trivet-argv-"));
  image = await ensureGuest();
});
afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill("SIGKILL");
      await new Promise((r) => c.once("exit", r));
    }
  }
});
afterAll(async () => {
  await rm(baseDir, { recursive: true, force: true });
});

function spawnTracked(file: string, args: string[]): ChildProcess {
  const child = spawn(file, args, { stdio: ["ignore", "ignore", "pipe"] });
  children.push(child);
  return child;
}

/** Creates every file the spec names inside `dir`, and returns the spec pointing at them. */
async function materialize(spec: VmSpec, dir: string, index: number): Promise<VmSpec> {
  await mkdir(dir, { recursive: true });
  const disks = await Promise.all(spec.disks.map(async (d) => {
    const path = join(dir, `${d.id}.img`);
    if (d.source.kind === "nbd") {
      // The export carries the image's bytes as they are (a qcow2 image's too), as a Trivet node's does.
      if (d.source.format === "qcow2") {
        const run = await runBounded("qemu-img", ["create", "-q", "-f", "qcow2", path, "1M"], toolTimeoutMs);
        expect(run.code, run.output).toBe(0);
      } else {
        await truncate(await touch(path), 1024 * 1024);
      }
      return { ...d, source: { ...d.source, socketPath: await exportOverNbd(path, d.source.exportName, join(dir, `${d.id}.nbd`)) } };
    }
    if (d.source.format === "qcow2") {
      const run = await runBounded("qemu-img", ["create", "-q", "-f", "qcow2", path, "1M"], toolTimeoutMs);
      expect(run.code, run.output).toBe(0);
    } else {
      await truncate(await touch(path), 1024 * 1024);
    }
    return { ...d, source: { ...d.source, path } };
  }));
  const iso = async (name: string): Promise<string> => touch(join(dir, name));
  const out: VmSpec = {
    ...spec,
    accelerator: "tcg",
    cpuModel: spec.cpuModel === "host" ? "max" : spec.cpuModel,
    disks,
    nics: spec.nics.map((n) => ({ ...n, backend: { kind: "user" } })),
    cdrom: spec.cdrom && {
      ...spec.cdrom, isoPath: spec.cdrom.isoPath && (await iso("cdrom.iso")),
      isoExport: spec.cdrom.isoExport && { ...spec.cdrom.isoExport, socketPath: await exportOverNbd(await iso("library.iso"), spec.cdrom.isoExport.exportName, join(dir, "cdrom.nbd")) },
    },
    cloudInitIsoPath: spec.cloudInitIsoPath && (await iso("cidata.iso")),
    serial: spec.serial && { socketPath: join(dir, "serial.sock") },
    kernelBoot: spec.kernelBoot && { ...spec.kernelBoot, kernelPath: image.kernel, initrdPath: spec.kernelBoot.initrdPath && image.initrd },
    qmpSocketPath: join(dir, "qmp.sock"),
    pidFile: join(dir, "qemu.pid"),
  };
  if (spec.firmware.kind === "ovmf") {
    const varsPath = join(dir, "vars.fd");
    await copyFile(ovmfVarsTemplate, varsPath);
    out.firmware = { kind: "ovmf", varsPath };
  }
  const g = spec.graphics;
  if (g.kind === "vnc") out.graphics = { kind: "vnc", listen: g.listen.kind === "unix" ? { kind: "unix", path: join(dir, "vnc.sock") } : { ...g.listen, display: vncDisplayBase + index } };
  return out;
}

/** Serves `path` under `exportName` with qemu-nbd on a unix socket; returns the socket once it exists. */
async function exportOverNbd(path: string, exportName: string, socketPath: string): Promise<string> {
  spawnTracked("qemu-nbd", ["--socket", socketPath, "--export-name", exportName, "--format", "raw", "--persistent", path]);
  await waitFor(() => existsSync(socketPath), `qemu-nbd socket ${socketPath}`);
  return socketPath;
}

async function touch(path: string): Promise<string> {
  await writeFile(path, "");
  return path;
}

async function waitFor(cond: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + qmpReadyTimeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`${what}: not ready within ${qmpReadyTimeoutMs} ms`);
    await new Promise((r) => setTimeout(r, qmpPollMs));
  }
}

async function connectWhenReady(path: string, child: ChildProcess, stderr: () => string): Promise<QmpMonitor> {
  const deadline = performance.now() + qmpReadyTimeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`QEMU exited with code ${child.exitCode}: ${stderr()}`);
    try {
      return await QmpMonitor.connect(path, { name: "QMP of the golden case" });
    } catch (err) {
      if (performance.now() > deadline) throw new Error(`QMP not ready within ${qmpReadyTimeoutMs} ms: ${(err as Error).message}; ${stderr()}`);
      await new Promise((r) => setTimeout(r, qmpPollMs));
    }
  }
}

const cases = readdirSync(testdata).filter((f) => f.endsWith(".json")).sort()
  .map((f) => ({ name: f.slice(0, -5), c: JSON.parse(readFileSync(join(testdata, f), "utf8")) as GoldenCase }))
  .filter(({ c }) => c.expect === "argv");

describe("golden command lines run under the real QEMU", () => {
  cases.forEach(({ name, c }, index) => {
    const needsOvmf = c.spec.firmware.kind === "ovmf";
    const runnable = !needsOvmf || (c.facts.ovmfCodePath !== null && existsSync(c.facts.ovmfCodePath) && existsSync(ovmfVarsTemplate));
    it.skipIf(!runnable)(name, async () => {
      const spec = await materialize(c.spec, join(baseDir, name), index);
      const argv = buildQemuArgv(spec, { ...c.facts, accelerators: ["tcg"] });
      let stderr = "";
      const child = spawnTracked("qemu-system-x86_64", [...argv, "-S"]);
      child.stderr?.on("data", (b: Buffer) => (stderr = (stderr + b.toString("utf8")).slice(-2000)));
      const monitor = await connectWhenReady(spec.qmpSocketPath, child, () => stderr);
      try {
        expect(await qmp.queryStatus(monitor)).toEqual({ running: false, status: "prelaunch" });
        expect(await qmp.queryCpusFast(monitor)).toHaveLength(spec.vcpus);
        expect((await qmp.queryMemorySizeSummary(monitor)).baseBytes).toBe(spec.memoryMiB * 1024 * 1024);
        const blocks = await qmp.queryBlock(monitor);
        // The OVMF flash images are block nodes too; the builder names its drives "drive-<id>".
        const media = blocks.map((b) => b.medium?.nodeName).filter((n) => n?.startsWith("drive-")).sort();
        const expected = spec.disks.map((d) => `drive-${d.id}`);
        if (spec.cdrom?.isoPath || spec.cdrom?.isoExport) expected.push("drive-cdrom");
        if (spec.cloudInitIsoPath) expected.push("drive-cloudinit");
        expect(media).toEqual(expected.sort());
        for (const d of spec.disks) expect(blocks.find((b) => b.medium?.nodeName === `drive-${d.id}`)?.medium?.readonly).toBe(d.readonly);
        if (spec.cdrom?.isoExport) expect(blocks.find((b) => b.medium?.nodeName === "drive-cdrom")?.medium?.readonly).toBe(true);
        const growable = spec.disks.find((d) => !d.readonly && d.source.kind === "file");
        if (growable) {
          await qmp.blockResize(monitor, `drive-${growable.id}`, 2 * 1024 * 1024);
          const grown = (await qmp.queryBlock(monitor)).find((b) => b.medium?.nodeName === `drive-${growable.id}`);
          expect(grown?.medium?.virtualSizeBytes).toBe(2 * 1024 * 1024);
        }
        await qmp.quit(monitor);
      } finally {
        monitor.close();
      }
      const code = child.exitCode ?? (await new Promise<number | null | "still running">((r) => {
        const timer = setTimeout(() => r("still running"), exitWaitMs);
        child.once("exit", (c) => { clearTimeout(timer); r(c); });
      }));
      expect(code, stderr).toBe(0);
    });
  });
});
