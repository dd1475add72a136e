// Tests of the run directory files: the re-attach record, the bounded QEMU log, and the part of
// the log a failed start quotes.
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { lastStartOutput, openLogForStart, qemuLogBytesMax, qemuLogKeepBytes, readPidFile, readRuntimeRecord, runtimeFileName, writeRuntimeRecord } from "./rundir.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "trivet-rundir-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("run directory", () => {
  it("round-trips the runtime record and refuses an incomplete one", async () => {
    const record = { name: "web1", uuid: "u", pidFile: "/run/p", qmpSocketPath: "/run/q", argv: ["qemu", "-S"] };
    await writeRuntimeRecord(dir, record);
    expect(await readRuntimeRecord(dir)).toEqual(record);
    await writeFile(join(dir, runtimeFileName), JSON.stringify({ name: "web1" }));
    await expect(readRuntimeRecord(dir)).rejects.toMatchObject({ code: "run-dir" });
  });

  it("reads a pidfile and treats garbage as no pid", async () => {
    await writeFile(join(dir, "a.pid"), "4242\n");
    await writeFile(join(dir, "b.pid"), "qemu\n");
    expect(await readPidFile(join(dir, "a.pid"))).toBe(4242);
    expect(await readPidFile(join(dir, "b.pid"))).toBeNull();
    expect(await readPidFile(join(dir, "none.pid"))).toBeNull();
  });

  it("quotes only the output of the last start", async () => {
    const first = await openLogForStart(dir, "web1", new Date(0));
    await writeFile(first.path, "old failure\n", { flag: "a" });
    await first.close();
    const second = await openLogForStart(dir, "web1", new Date(1000));
    await writeFile(second.path, "qemu-system-x86_64: -blockdev x: Could not open 'x'\n", { flag: "a" });
    await second.close();
    expect(await lastStartOutput(second.path)).toBe("qemu-system-x86_64: -blockdev x: Could not open 'x'");
  });

  it("cuts a log past its bound down to its newest part when the VM starts again", async () => {
    const path = join(dir, "qemu.log");
    await writeFile(path, "x".repeat(qemuLogBytesMax) + "NEWEST\n");
    const inode = (await stat(path)).ino;
    const log = await openLogForStart(dir, "web1", new Date(0));
    // The same file: a QEMU that still writes to it keeps writing into the log.
    expect((await stat(path)).ino).toBe(inode);
    await log.close();
    const text = await readFile(path, "utf8");
    expect((await stat(path)).size).toBeLessThan(qemuLogKeepBytes + 200);
    expect(text).toContain("NEWEST\n--- trivet: starting QEMU for web1");
  });
});
