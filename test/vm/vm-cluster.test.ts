// VMs on a cluster of three real daemons, through the API: create a VM with the test guest,
// start it and read its marker on the serial console in the assigned node's run directory,
// pause and resume, ACPI shutdown, start again, restart the node's daemon while the guest runs
// (the guest survives and the new agent re-attaches to the same pid), forced stop, delete (no
// QEMU and no run directory left). Bad input is refused naming the field, creating nothing.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ApiClient } from "../../core/api/client.ts";
import { VmService, type Vm } from "../../core/api/gen/trivet/v1/vm_pb.ts";
import { ApiError } from "../../core/api/server/errors.ts";
import { processAlive } from "../../core/host/qemu/proc.ts";
import { cli, DaemonCluster, type DaemonNode } from "../cluster/daemon-cluster.ts";
import { ensureGuest, guestReadyMarker, type GuestImage } from "../guest/guest.ts";
import { SerialReader } from "./serial.ts";
import { connectWs, waitFor } from "../console/ws-client.ts";

/** TCG boot of the test guest on a loaded 2-core machine. */
const bootTimeoutMs = 120_000;
const statusTimeoutMs = 60_000;
const acpiTimeoutMs = 90_000;
const restartTimeoutMs = 90_000;
const socketWaitMs = 30_000;

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** QEMU processes whose command line names the VM's uuid. */
function qemuPidsFor(vmId: string): number[] {
  const r = spawnSync("pgrep", ["-f", "--", `qemu-system.*-uuid ${vmId}`], { encoding: "utf8" });
  return r.stdout.split("\n").filter((l) => l.trim() !== "").map(Number);
}

async function expectApiError(p: Promise<unknown>, code: string, field: string): Promise<ApiError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err, `expected ${code} naming ${field}`).toBeInstanceOf(ApiError);
  expect((err as ApiError).code).toBe(code);
  expect((err as ApiError).field).toBe(field);
  return err as ApiError;
}

describe("VMs on a three-daemon cluster", () => {
  const c = new DaemonCluster();
  const nodes: DaemonNode[] = [];
  let image: GuestImage;
  let api: ApiClient;
  const readers: SerialReader[] = [];
  const seenPids = new Set<number>();

  beforeAll(async () => {
    image = await ensureGuest();
    for (const name of ["n1", "n2", "n3"]) nodes.push(await c.allocate(name));
    c.init(nodes[0]!);
    c.serve(nodes[0]!);
    await c.login(nodes[0]!);
    for (const [i, n] of [[1, nodes[1]!], [2, nodes[2]!]] as const) {
      const r = c.join(n, await c.token(nodes[0]!));
      expect(r.code, r.stderr).toBe(0);
      c.serve(n);
      await c.waitForVoters(nodes[0]!, i === 1 ? 1 : 3);
    }
    api = c.client(nodes[1]!);
  });

  afterAll(async () => {
    for (const r of readers) r.close();
    api?.close();
    await c.stop();
    for (const pid of seenPids) {
      if (!pidAlive(pid)) continue;
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Gone meanwhile.
      }
    }
  });

  const getVm = async (name: string): Promise<Vm> => (await api.call(VmService, "getVm", { name })).vm!;

  /** Waits until the reported status satisfies `ok`. */
  const waitStatus = (name: string, ok: (v: Vm) => boolean, what: string, timeoutMs = statusTimeoutMs) =>
    DaemonCluster.retry(async () => {
      const v = await getVm(name);
      if (!ok(v)) throw new Error(`VM ${name}: waiting for ${what}; status ${JSON.stringify({ state: v.status?.state, pid: String(v.status?.pid), error: v.status?.error })}`);
      return v;
    }, timeoutMs);

  const nodeOf = (v: Vm): DaemonNode => nodes.find((n) => n.name === v.nodeName)!;
  const serialPath = (v: Vm) => path.join(nodeOf(v).dataDir, "run", v.id, "serial.sock");

  async function readMarker(v: Vm): Promise<void> {
    await DaemonCluster.retry(async () => fs.statSync(serialPath(v)), socketWaitMs, 25);
    const reader = await SerialReader.connect(serialPath(v));
    readers.push(reader);
    await reader.waitForLine(new RegExp(guestReadyMarker), bootTimeoutMs);
  }

  it("creates, starts, pauses, shuts down, survives a daemon restart, stops and deletes a VM", async () => {
    const created = await DaemonCluster.retry(() => api.call(VmService, "createVm", {
      name: "guest1",
      config: { vcpus: 1, memoryMib: 256n, nics: [{ mac: "" }], kernelBoot: { kernelPath: image.kernel, initrdPath: image.initrd, append: "console=ttyS0 quiet panic=-1" } },
    }), statusTimeoutMs);
    const vm = created.vm!;
    expect(vm.machineType).toMatch(/^pc-i440fx-\d+\.\d+$/);
    expect(vm.nics[0]!.mac).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
    expect(nodes.map((n) => n.name)).toContain(vm.nodeName);
    await waitStatus("guest1", (v) => v.status?.state === "stopped", "stopped before start");

    const t0 = performance.now();
    await api.call(VmService, "startVm", { name: "guest1" });
    await readMarker(vm);
    console.log(`StartVm → ${guestReadyMarker} on the serial console: ${Math.round(performance.now() - t0)} ms (TCG, node ${vm.nodeName})`);
    const running = await waitStatus("guest1", (v) => v.status?.state === "running" && v.status.pid > 0n, "running");
    const pid = Number(running.status!.pid);
    seenPids.add(pid);
    expect(qemuPidsFor(vm.id)).toContain(pid);

    // The serial console through the node's authenticated WebSocket (QEMU takes one client at a time).
    for (const r of readers.splice(0)) r.close();
    const con = await DaemonCluster.retry(async () => {
      const r = await connectWs(Number(nodeOf(vm).http.split(":")[1]), c.caPem, "/api/v1/console/serial/guest1", { bearer: c.adminToken, protocols: ["binary"] });
      if (!r.ok) throw new Error(`console refused: ${r.status} ${r.body}`);
      return r;
    }, statusTimeoutMs);
    con.ws.send(Buffer.from("echo hi-$((40+2))\n"));
    await waitFor(con.received, "hi-42", "the guest's answer through the WebSocket console");
    con.ws.close();

    await api.call(VmService, "pauseVm", { name: "guest1" });
    await waitStatus("guest1", (v) => v.status?.state === "paused", "paused");
    await api.call(VmService, "resumeVm", { name: "guest1" });
    await waitStatus("guest1", (v) => v.status?.state === "running", "running after resume");

    await api.call(VmService, "shutdownVm", { name: "guest1" });
    await waitStatus("guest1", (v) => v.status?.state === "stopped" && v.status.pid === 0n, "stopped after ACPI shutdown", acpiTimeoutMs);
    expect(await processAlive(pid)).toBe(false);

    await api.call(VmService, "startVm", { name: "guest1" });
    await readMarker(vm);
    const again = await waitStatus("guest1", (v) => v.status?.state === "running" && v.status.pid > 0n, "running again");
    const pid2 = Number(again.status!.pid);
    seenPids.add(pid2);
    expect(pid2).not.toBe(pid);

    // The node's daemon dies; its guest does not. The new daemon's agent re-attaches and reports.
    const node = nodeOf(vm);
    await c.kill(node);
    const killedAtMs = Date.now();
    expect(await processAlive(pid2)).toBe(true);
    c.serve(node);
    await waitStatus("guest1", (v) => v.status?.state === "running" && Number(v.status.pid) === pid2 && Number(v.status.reportedAtMs) > killedAtMs, "re-attached", restartTimeoutMs);
    // Control is back: pause and resume go through the re-attached runtime.
    await api.call(VmService, "pauseVm", { name: "guest1" });
    await waitStatus("guest1", (v) => v.status?.state === "paused", "paused after re-attach");
    await api.call(VmService, "resumeVm", { name: "guest1" });
    await waitStatus("guest1", (v) => v.status?.state === "running" && Number(v.status.pid) === pid2, "running after re-attach");

    await api.call(VmService, "stopVm", { name: "guest1" });
    await waitStatus("guest1", (v) => v.status?.state === "stopped" && v.status.pid === 0n, "stopped by force");
    // Not our child since the restart: until init reaps it, it may linger as a zombie, which is not alive.
    expect(await processAlive(pid2)).toBe(false);

    await api.call(VmService, "deleteVm", { name: "guest1" });
    await expectApiError(getVm("guest1"), "not_found", "name");
    const runDir = path.join(node.dataDir, "run", vm.id);
    await DaemonCluster.retry(async () => {
      if (fs.existsSync(runDir)) throw new Error(`${runDir} still exists`);
    }, statusTimeoutMs);
    expect(qemuPidsFor(vm.id)).toEqual([]);
  });

  it("refuses bad input naming the field and creates nothing", async () => {
    const config = { vcpus: 1, memoryMib: 64n };
    await DaemonCluster.retry(() => api.call(VmService, "createVm", { name: "dup", config }), statusTimeoutMs);
    const names = async () => (await api.call(VmService, "listVms", {})).vms.map((v) => v.name);
    const before = await names();
    expect(before).toContain("dup");
    await expectApiError(api.call(VmService, "createVm", { name: "dup", config }), "already_exists", "name");
    const huge = await expectApiError(api.call(VmService, "createVm", { name: "huge", config: { vcpus: 1, memoryMib: 4_000_000n } }), "invalid_argument", "config.memory_mib");
    expect(huge.message).toMatch(/more than any node has/);
    await expectApiError(api.call(VmService, "createVm", { name: "badmac", config: { ...config, nics: [{ mac: "52:54:00:zz:00:01" }] } }), "invalid_argument", "config.nics[0].mac");
    await expectApiError(api.call(VmService, "createVm", { name: "badmachine", config: { ...config, machineType: "pc-q35-1.0" } }), "invalid_argument", "config.machine_type");
    await expectApiError(api.call(VmService, "createVm", { name: "Bad_Name", config }), "invalid_argument", "name");
    expect(await names()).toEqual(before);
    await api.call(VmService, "deleteVm", { name: "dup" });
  });

  it("drives VMs from the CLI", () => {
    const n = nodes[2]!;
    const conn = ["--server", n.api, "--token", c.adminToken, "--ca-file", path.join(nodes[0]!.dataDir, "tls", "ca.crt")];
    const created = cli(["vm", "create", "cli1", "--vcpus", "1", "--memory", "32", "--disk", "4", ...conn]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/vm cli1 created on n[123] \(pc-i440fx-[\d.]+, MAC 52:54:00:/);
    const listed = cli(["vm", "list", "--output", "json", ...conn]);
    expect(listed.code, listed.stderr).toBe(0);
    expect((JSON.parse(listed.stdout) as { vms: Array<{ name: string }> }).vms.map((v) => v.name)).toContain("cli1");
    const bad = cli(["vm", "create", "cli2", "--vcpus", "99", "--memory", "32", ...conn]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/config\.vcpus/);
    const deleted = cli(["vm", "delete", "cli1", ...conn]);
    expect(deleted.code, deleted.stderr).toBe(0);
  });

  it("reports a failed start with QEMU's own error message", async () => {
    const missing = path.join(c.dir, "no-such-kernel");
    await api.call(VmService, "createVm", { name: "broken", config: { vcpus: 1, memoryMib: 64n, kernelBoot: { kernelPath: missing, initrdPath: "", append: "" } }, start: true });
    const v = await waitStatus("broken", (x) => x.status?.state === "failed", "failed");
    // QEMU names the file it could not open; the agent passes that on instead of a generic error.
    expect(v.status!.error).toContain(missing);
    expect(v.status!.error).toMatch(/could not open kernel file/);
    expect(qemuPidsFor(v.id)).toEqual([]);
    await api.call(VmService, "deleteVm", { name: "broken" });
  });
});
