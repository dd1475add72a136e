// Unit tests of the QEMU runtime's failure paths, without QEMU: stand-in "QEMU" scripts that
// fail or hang, and run directories that point at the wrong process. The happy paths run the
// real test guest in test/vm/runtime.test.ts.
import { spawnSync } from "node:child_process";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { processAlive, readCmdline } from "./proc.ts";
import { writeRuntimeRecord } from "./rundir.ts";
import { attachVm, startVm } from "./runtime.ts";
import type { QemuHostFacts, VmSpec } from "./spec.ts";

const facts: QemuHostFacts = { qemuVersion: "7.2.22", machineTypes: ["pc-q35-7.2"], accelerators: ["tcg"], cpuModels: [], ovmfCodePath: null, vhostNet: false };
const uuid = "5f0c7c2e-8d1a-4b7e-9c3f-2a6d8e4b1c90";
const hangTimeoutMs = 300;
const killWaitMs = 3000;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "trivet-rt-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function spec(): VmSpec {
  return {
    name: "web1", uuid, vcpus: 1, memoryMiB: 64, machineType: "pc-q35-7.2", cpuModel: "qemu64", firmware: { kind: "seabios" }, accelerator: "tcg",
    disks: [], cdrom: null, nics: [], serial: null, graphics: { kind: "none" }, cloudInitIsoPath: null, kernelBoot: null,
    qmpSocketPath: join(dir, "qmp.sock"), pidFile: join(dir, "qemu.pid"),
  };
}

async function script(name: string, body: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, `#!/bin/sh\n${body}\n`);
  await chmod(path, 0o755);
  return path;
}

describe("startVm failures", () => {
  it("reports a QEMU binary that cannot be run", async () => {
    await expect(startVm(spec(), facts, { runDir: dir, qemuBinary: join(dir, "no-such-qemu") })).rejects.toMatchObject({
      code: "start-failed", message: expect.stringContaining("cannot run"),
    });
  });

  it("quotes what QEMU wrote before exiting, from this start only", async () => {
    const qemu = await script("qemu", 'echo "qemu-system-x86_64: -blockdev driver=raw: Could not open \'/nope\': No such file or directory" >&2; exit 1');
    await writeFile(join(dir, "qemu.log"), "an error of an earlier start\n");
    const err = (await startVm(spec(), facts, { runDir: dir, qemuBinary: qemu }).catch((e: unknown) => e)) as Error;
    expect(err).toMatchObject({ code: "start-failed" });
    expect(err.message).toBe("starting VM web1: QEMU exited with code 1: qemu-system-x86_64: -blockdev driver=raw: Could not open '/nope': No such file or directory");
  });

  it("kills a QEMU whose QMP never answers, with everything it started", async () => {
    const qemu = await script("qemu", `sleep 30 & echo $! > ${join(dir, "grandchild.pid")}; exec sleep 30`);
    const err = (await startVm(spec(), facts, { runDir: dir, qemuBinary: qemu, qmpStartTimeoutMs: hangTimeoutMs }).catch((e: unknown) => e)) as Error;
    expect(err).toMatchObject({ code: "start-timeout", message: expect.stringContaining(`within ${hangTimeoutMs} ms`) });
    const grandchild = Number(spawnSync("cat", [join(dir, "grandchild.pid")], { encoding: "utf8" }).stdout.trim());
    expect(grandchild).toBeGreaterThan(1);
    const deadline = Date.now() + killWaitMs;
    while ((await processAlive(grandchild)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(await processAlive(grandchild)).toBe(false);
  });
});

describe("attachVm refusals", () => {
  const record = () => ({ name: "web1", uuid, pidFile: join(dir, "qemu.pid"), qmpSocketPath: join(dir, "qmp.sock"), argv: [] });

  it("without a runtime record", async () => {
    await expect(attachVm({ runDir: dir })).rejects.toMatchObject({ code: "run-dir" });
  });

  it("without a pid", async () => {
    await writeRuntimeRecord(dir, record());
    await expect(attachVm({ runDir: dir })).rejects.toMatchObject({ code: "not-running" });
  });

  it("when the process is gone", async () => {
    await writeRuntimeRecord(dir, record());
    const gone = spawnSync("true").pid;
    await writeFile(join(dir, "qemu.pid"), String(gone));
    await expect(attachVm({ runDir: dir })).rejects.toMatchObject({ code: "not-running", message: expect.stringContaining(`process ${gone}`) });
  });

  it("when the pid is some other process, and leaves that process alone", async () => {
    await writeRuntimeRecord(dir, record());
    await writeFile(join(dir, "qemu.pid"), String(process.pid));
    await expect(attachVm({ runDir: dir })).rejects.toMatchObject({ code: "not-qemu" });
    expect(await readCmdline(process.pid)).not.toBeNull();
  });
});
