// Tests of the typed QMP commands: against the fake QMP server with replies shaped as QEMU 7.2
// sends them (arguments on the wire, parsed results, malformed replies refused), and each
// wrapper's own timeout.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import * as qmp from "./commands.ts";
import { FakeQmpServer } from "./fake-server.ts";
import type { FakeAnswer } from "./fake-server.ts";
import { QmpMonitor } from "./monitor.ts";
import type { QmpExecutor } from "./monitor.ts";

let fake: FakeQmpServer;
let monitor: QmpMonitor;
let answers: Record<string, FakeAnswer>;

beforeEach(async () => {
  answers = {};
  fake = await FakeQmpServer.start((command) => answers[command] ?? { return: {} });
  monitor = await QmpMonitor.connect(fake.socketPath, { name: "QMP of web1" });
});
afterEach(async () => {
  monitor.close();
  await fake.close();
});

describe("typed QMP commands", () => {
  it("query-status parses QEMU's run state", async () => {
    answers["query-status"] = { return: { status: "paused", singlestep: false, running: false } };
    await expect(qmp.queryStatus(monitor)).resolves.toEqual({ running: false, status: "paused" });
  });

  it("the run-state commands send their own names and no arguments", async () => {
    await qmp.stop(monitor);
    await qmp.cont(monitor);
    await qmp.systemPowerdown(monitor);
    await qmp.systemReset(monitor);
    expect(fake.received).toEqual([
      { command: "stop", args: undefined },
      { command: "cont", args: undefined },
      { command: "system_powerdown", args: undefined },
      { command: "system_reset", args: undefined },
    ]);
  });

  it("quit counts a socket closed before the reply as done", async () => {
    answers.quit = "close";
    await expect(qmp.quit(monitor)).resolves.toBeUndefined();
  });

  it("query-cpus-fast gives vCPU thread ids", async () => {
    answers["query-cpus-fast"] = { return: [
      { "thread-id": 25627, props: { "core-id": 0, "thread-id": 0, "socket-id": 0 }, "qom-path": "/machine/unattached/device[0]", "cpu-index": 0, target: "x86_64" },
      { "thread-id": 25628, props: { "core-id": 1, "thread-id": 0, "socket-id": 0 }, "qom-path": "/machine/unattached/device[2]", "cpu-index": 1, target: "x86_64" },
    ] };
    await expect(qmp.queryCpusFast(monitor)).resolves.toEqual([{ cpuIndex: 0, threadId: 25627 }, { cpuIndex: 1, threadId: 25628 }]);
  });

  it("query-memory-size-summary and query-balloon give bytes", async () => {
    answers["query-memory-size-summary"] = { return: { "base-memory": 268435456, "plugged-memory": 0 } };
    answers["query-balloon"] = { return: { actual: 134217728 } };
    await expect(qmp.queryMemorySizeSummary(monitor)).resolves.toEqual({ baseBytes: 268435456, pluggedBytes: 0 });
    await expect(qmp.queryBalloon(monitor)).resolves.toEqual({ actualBytes: 134217728 });
  });

  it("query-balloon without a balloon device is QEMU's command error", async () => {
    answers["query-balloon"] = { error: { class: "DeviceNotActive", desc: "No balloon device has been activated" } };
    await expect(qmp.queryBalloon(monitor)).rejects.toMatchObject({ code: "command", details: { errorClass: "DeviceNotActive" } });
  });

  it("query-block gives each drive's node, file and size, and an empty CD-ROM as no medium", async () => {
    answers["query-block"] = { return: [
      { io_status: "ok", device: "", locked: false, removable: false, qdev: "/machine/peripheral/root/virtio-backend", type: "unknown",
        inserted: { ro: false, drv: "raw", "node-name": "drive-root", file: "/var/lib/trivet/images/root.raw", image: { "virtual-size": 1073741824, filename: "/var/lib/trivet/images/root.raw", format: "raw" } } },
      { device: "", locked: false, removable: true, qdev: "cdrom", tray_open: false, type: "unknown" },
    ] };
    await expect(qmp.queryBlock(monitor)).resolves.toEqual([
      { qdev: "/machine/peripheral/root/virtio-backend", removable: false, medium: { nodeName: "drive-root", file: "/var/lib/trivet/images/root.raw", readonly: false, virtualSizeBytes: 1073741824 } },
      { qdev: "cdrom", removable: true, medium: null },
    ]);
  });

  it("block_resize and device_del send their arguments", async () => {
    await qmp.blockResize(monitor, "drive-data", 2 * 1024 ** 3);
    await qmp.deviceDel(monitor, "net1");
    expect(fake.received).toEqual([
      { command: "block_resize", args: { "node-name": "drive-data", size: 2147483648 } },
      { command: "device_del", args: { id: "net1" } },
    ]);
  });

  it("block_resize refuses a size that is not whole bytes before asking QEMU", async () => {
    await expect(qmp.blockResize(monitor, "drive-data", 1.5)).rejects.toMatchObject({ code: "command" });
    expect(fake.received).toEqual([]);
  });

  it("blockdev-add, blockdev-reopen and blockdev-del send QEMU's BlockdevOptions as given", async () => {
    const nbd = { driver: "nbd", "node-name": "nbd1-root", server: { type: "unix", path: "/run/nbd.sock" }, export: "vol/root", "read-only": false };
    const raw = { driver: "raw", "node-name": "drive-root", "read-only": false, cache: { direct: false, "no-flush": false }, discard: "unmap", file: "nbd1-root" };
    await qmp.blockdevAdd(monitor, nbd);
    await qmp.blockdevReopen(monitor, [raw]);
    await qmp.blockdevDel(monitor, "nbd0-root");
    expect(fake.received).toEqual([
      { command: "blockdev-add", args: nbd },
      { command: "blockdev-reopen", args: { options: [raw] } },
      { command: "blockdev-del", args: { "node-name": "nbd0-root" } },
    ]);
  });

  it("blockdev-reopen of no node is refused before asking QEMU; QEMU's refusal keeps its class", async () => {
    await expect(qmp.blockdevReopen(monitor, [])).rejects.toMatchObject({ code: "command" });
    answers["blockdev-del"] = { error: { class: "GenericError", desc: "Node nbd0-root is in use" } };
    await expect(qmp.blockdevDel(monitor, "nbd0-root")).rejects.toMatchObject({ code: "command", details: { errorClass: "GenericError" } });
    expect(fake.received.map((r) => r.command)).toEqual(["blockdev-del"]);
  });

  it("query-named-block-nodes asks for the flat graph and gives each node's driver and size", async () => {
    // Shaped as QEMU 7.2 answered for a raw disk over NBD (fields trimmed).
    answers["query-named-block-nodes"] = { return: [
      { detect_zeroes: "off", image: { "virtual-size": 16777216, filename: "nbd+unix:///vol/img?socket=/r/nbd.sock", format: "nbd" }, ro: false, "node-name": "nbd1-disk0", backing_file_depth: 0, drv: "nbd", encrypted: false, cache: { "no-flush": false, direct: false, writeback: true }, file: "nbd+unix:///vol/img?socket=/r/nbd.sock" },
      { detect_zeroes: "off", image: { "virtual-size": 8388608, filename: "nbd+unix:///vol/img?socket=/r/nbd.sock", format: "raw" }, ro: false, "node-name": "drive-disk0", backing_file_depth: 0, drv: "raw", encrypted: false, cache: { "no-flush": false, direct: true, writeback: true }, file: "nbd+unix:///vol/img?socket=/r/nbd.sock" },
    ] };
    await expect(qmp.queryNamedBlockNodes(monitor)).resolves.toEqual([
      { nodeName: "nbd1-disk0", driver: "nbd", readonly: false, virtualSizeBytes: 16777216 },
      { nodeName: "drive-disk0", driver: "raw", readonly: false, virtualSizeBytes: 8388608 },
    ]);
    expect(fake.received).toEqual([{ command: "query-named-block-nodes", args: { flat: true } }]);
  });

  it.each([
    ["query-named-block-nodes", () => qmp.queryNamedBlockNodes(monitor), [{ "node-name": "drive-a", drv: "raw", ro: false }]],
    ["blockdev-add", () => qmp.blockdevAdd(monitor, { driver: "nbd", "node-name": "n" }), { unexpected: 1 }],
    ["query-status", () => qmp.queryStatus(monitor), { status: "running" }],
    ["query-cpus-fast", () => qmp.queryCpusFast(monitor), { "cpu-index": 0 }],
    ["query-block", () => qmp.queryBlock(monitor), [{ removable: false, inserted: { ro: false } }]],
    ["stop", () => qmp.stop(monitor), { unexpected: 1 }],
  ] as const)("%s refuses a reply of the wrong shape", async (command, call, value) => {
    answers[command] = { return: value };
    await expect(call()).rejects.toMatchObject({ code: "protocol", details: { command } });
  });
});

describe("per-command timeouts", () => {
  it("each wrapper passes its own named timeout", async () => {
    const seen: Record<string, number> = {};
    const recorder: QmpExecutor = {
      execute: (command, _args, timeoutMs) => {
        seen[command] = timeoutMs;
        return Promise.resolve(command === "query-status" ? { running: true, status: "running" } : command === "query-memory-size-summary" ? { "base-memory": 1 } : command.startsWith("query-") ? [] : {});
      },
    };
    await Promise.all([
      qmp.queryStatus(recorder), qmp.cont(recorder), qmp.stop(recorder), qmp.systemPowerdown(recorder), qmp.systemReset(recorder),
      qmp.quit(recorder), qmp.queryCpusFast(recorder), qmp.queryBlock(recorder), qmp.queryMemorySizeSummary(recorder),
      qmp.blockResize(recorder, "drive-a", 512), qmp.deviceDel(recorder, "a"), qmp.queryNamedBlockNodes(recorder),
      qmp.blockdevAdd(recorder, { driver: "nbd", "node-name": "n" }), qmp.blockdevReopen(recorder, [{ driver: "raw", "node-name": "d" }]), qmp.blockdevDel(recorder, "n"),
    ]);
    expect(seen).toEqual({
      "query-status": qmp.queryTimeoutMs, cont: qmp.runStateTimeoutMs, stop: qmp.runStateTimeoutMs,
      system_powerdown: qmp.powerdownTimeoutMs, system_reset: qmp.resetTimeoutMs, quit: qmp.quitTimeoutMs,
      "query-cpus-fast": qmp.queryTimeoutMs, "query-block": qmp.queryTimeoutMs, "query-memory-size-summary": qmp.queryTimeoutMs,
      block_resize: qmp.blockResizeTimeoutMs, device_del: qmp.deviceDelTimeoutMs, "query-named-block-nodes": qmp.queryTimeoutMs,
      "blockdev-add": qmp.blockdevAddTimeoutMs, "blockdev-reopen": qmp.blockdevReopenTimeoutMs, "blockdev-del": qmp.blockdevDelTimeoutMs,
    });
  });
});
