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
import { processAlive } from "../../core/host/qemu/proc.ts";
import { cli, DaemonCluster, type DaemonNode } from "../cluster/daemon-cluster.ts";
import { ensureGuest, guestReadyMarker, type GuestImage } from "../guest/guest.ts";
import { SerialReader } from "./serial.ts";
import { connectWs, waitFor } from "../console/ws-client.ts";
import { EventService } from "../../core/api/gen/trivet/v1/events_pb.ts";
import { expectApiError } from "../api/expect-api-error.ts";
import { statusTimeoutMs, vmStatus } from "./vm-status.ts";

/** TCG boot of the test guest on a loaded 2-core machine. */
const bootTimeoutMs = 120_000;
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

describe("VMs on a three-daemon cluster", () => {
  const c = new DaemonCluster();
  const nodes: DaemonNode[] = [];
  let image: GuestImage;
  let api: ApiClient;
  const readers: SerialReader[] = [];
  const seenPids = new Set<number>();

  beforeAll(async () => {
    image = await ensureGuest();
    nodes.push(...(await c.startThree()));
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

  const { getVm, waitStatus } = vmStatus(() => api);

  const nodeOf = (v: Vm): DaemonNode => nodes.find((n) => n.name === v.nodeName)!;
  const serialPath = (v: Vm) => path.join(nodeOf(v).dataDir, "run", v.id, "serial.sock");

  /** A serial reader attached as soon as QEMU's socket exists (output before that is dropped). */
  async function attachSerial(v: Vm): Promise<SerialReader> {
    await DaemonCluster.retry(async () => fs.statSync(serialPath(v)), socketWaitMs, 25);
    const reader = await SerialReader.connect(serialPath(v));
    readers.push(reader);
    return reader;
  }

  async function readMarker(v: Vm): Promise<void> {
    await (await attachSerial(v)).waitForLine(new RegExp(guestReadyMarker), bootTimeoutMs);
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

    // Another node's event stream reports the VM turning running (what the UI listens to).
    const watcher = c.client(nodes[2]!);
    const watching = new AbortController();
    const states: string[] = [];
    const watched = watcher.stream(EventService, "watch", { kinds: ["vm.state"], objectPrefix: "vm/guest1" }, (e) => {
      states.push(e.fields.state ?? "");
      return e.fields.state === "running" ? false : undefined;
    }, watching.signal);
    await new Promise((r) => setTimeout(r, 500));
    const t0 = performance.now();
    await api.call(VmService, "startVm", { name: "guest1" });
    await readMarker(vm);
    console.log(`StartVm → ${guestReadyMarker} on the serial console: ${Math.round(performance.now() - t0)} ms (TCG, node ${vm.nodeName})`);
    const running = await waitStatus("guest1", (v) => v.status?.state === "running" && v.status.pid > 0n, "running");
    const pid = Number(running.status!.pid);
    const watchTimer = setTimeout(() => watching.abort(), statusTimeoutMs);
    await watched;
    clearTimeout(watchTimer);
    watcher.close();
    expect(states).toContain("running");
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

  it("reads back in the next boot what a boot wrote to its data disk", async () => {
    const created = await api.call(VmService, "createVm", {
      name: "disk1",
      config: { vcpus: 1, memoryMib: 256n, disks: [{ sizeMib: 8n, format: "raw" }], kernelBoot: { kernelPath: image.kernel, initrdPath: image.initrd, append: "console=ttyS0 quiet panic=-1" } },
    });
    const vm = created.vm!;
    const imagePath = path.join(nodeOf(vm).dataDir, "images", vm.id, "disk0.raw");
    await waitStatus("disk1", (v) => v.status?.state === "stopped", "stopped before start");
    // The guest counts its boots in a sector of /dev/vda, the first virtio disk: the data disk.
    for (const count of [0, 1]) {
      await api.call(VmService, "startVm", { name: "disk1" });
      const serial = await attachSerial(vm);
      const at = await serial.waitForLine(/^disk=vda /, bootTimeoutMs);
      expect(serial.lines[at]!.text).toMatch(new RegExp(`^disk=vda disk_bytes=${8 * 1024 * 1024} boot_count=${count} write=ok$`));
      await serial.waitForLine(new RegExp(guestReadyMarker), bootTimeoutMs, at);
      const running = await waitStatus("disk1", (v) => v.status?.state === "running" && v.status.pid > 0n, "running");
      seenPids.add(Number(running.status!.pid));
      await api.call(VmService, "shutdownVm", { name: "disk1" });
      await serial.waitForLine(/TRIVET-GUEST-POWEROFF reason=acpi-power-button/, acpiTimeoutMs, at);
      await waitStatus("disk1", (v) => v.status?.state === "stopped" && v.status.pid === 0n, "stopped after ACPI shutdown", acpiTimeoutMs);
      serial.close();
      expect(fs.readFileSync(imagePath).subarray(8 * 512, 8 * 512 + 32).toString("latin1")).toContain(`TRIVET-BOOTCOUNT=${count + 1}\n`);
    }
    const deleted = await api.call(VmService, "deleteVm", { name: "disk1" });
    expect(deleted.keptDisks).toEqual([]);
    // By default a VM's disks go with it.
    await DaemonCluster.retry(async () => {
      if (fs.existsSync(path.dirname(imagePath))) throw new Error(`${path.dirname(imagePath)} still exists`);
    }, statusTimeoutMs);
  });

  it("resets and reboots a running guest in place, and deletes a VM keeping its disks", async () => {
    const kernelBoot = { kernelPath: image.kernel, initrdPath: image.initrd, append: "console=ttyS0 quiet panic=-1" };
    const vm = (await api.call(VmService, "createVm", { name: "power1", config: { vcpus: 1, memoryMib: 256n, disks: [{ sizeMib: 8n, format: "raw" }], kernelBoot } })).vm!;
    await expectApiError(api.call(VmService, "resetVm", { name: "power1" }), "failed_precondition", "name");
    await api.call(VmService, "startVm", { name: "power1" });
    const serial = await attachSerial(vm);
    let at = await serial.waitForLine(/^disk=vda .* boot_count=0 write=ok$/, bootTimeoutMs);
    at = await serial.waitForLine(new RegExp(guestReadyMarker), bootTimeoutMs, at);
    const running = await waitStatus("power1", (v) => v.status?.state === "running" && v.status.pid > 0n, "running");
    const pid = running.status!.pid;
    seenPids.add(Number(pid));
    // Each request boots the guest again in the same QEMU; the guest's boot counter shows it happened.
    let lastAtMs = 0n;
    for (const [method, done, count] of [["resetVm", "reset", 1], ["rebootVm", "reboot-reset", 2]] as const) {
      await api.call(VmService, method, { name: "power1" });
      at = await serial.waitForLine(new RegExp(`^disk=vda .* boot_count=${count} write=ok$`), bootTimeoutMs, at + 1);
      at = await serial.waitForLine(new RegExp(guestReadyMarker), bootTimeoutMs, at);
      const v = await waitStatus("power1", (x) => x.status?.lastAction === done && x.status.lastActionAtMs > lastAtMs, `${done} reported`);
      expect(v.status!.state).toBe("running");
      expect(v.status!.pid).toBe(pid);
      lastAtMs = v.status!.lastActionAtMs;
    }
    // Deleted while running, keeping its disks: QEMU and the run directory go, the image stays with what the guest wrote.
    const deleted = await api.call(VmService, "deleteVm", { name: "power1", keepDisks: true });
    const node = nodeOf(vm);
    const imagePath = path.join(node.dataDir, "images", vm.id, "disk0.raw");
    expect(deleted.keptDisks.map((d) => ({ nodeName: d.nodeName, path: d.path }))).toEqual([{ nodeName: node.name, path: imagePath }]);
    await DaemonCluster.retry(async () => {
      if (fs.existsSync(path.join(node.dataDir, "run", vm.id)) || qemuPidsFor(vm.id).length > 0) throw new Error("run dir or QEMU of power1 still there");
    }, statusTimeoutMs);
    expect(fs.readFileSync(imagePath).subarray(8 * 512, 8 * 512 + 32).toString("latin1")).toContain("TRIVET-BOOTCOUNT=3\n");
  });

  /** vCPUs and memory of the QEMU the agent last started for `v`, from the argv it recorded. */
  function startedWith(v: Vm): { smp: string; memory: string } {
    const argv = (JSON.parse(fs.readFileSync(path.join(nodeOf(v).dataDir, "run", v.id, "runtime.json"), "utf8")) as { argv: string[] }).argv;
    return { smp: argv[argv.indexOf("-smp") + 1]!, memory: argv[argv.indexOf("-m") + 1]! };
  }

  it("updates a VM: the description at once, vCPUs and memory pending until the next start", async () => {
    const kernelBoot = { kernelPath: image.kernel, initrdPath: image.initrd, append: "console=ttyS0 quiet panic=-1" };
    await api.call(VmService, "createVm", { name: "upd1", description: "first", config: { vcpus: 1, memoryMib: 256n, kernelBoot } });
    // Stopped: nothing is pending, the next start takes the change.
    const stopped = (await api.call(VmService, "updateVm", { name: "upd1", vcpus: 2, description: "second" })).vm!;
    expect({ vcpus: stopped.vcpus, description: stopped.description, pending: stopped.pendingRestart, fields: stopped.pendingFields }).toEqual({ vcpus: 2, description: "second", pending: false, fields: [] });
    await api.call(VmService, "startVm", { name: "upd1" });
    const first = await waitStatus("upd1", (v) => v.status?.state === "running" && v.status.pid > 0n, "running");
    seenPids.add(Number(first.status!.pid));
    expect(startedWith(first)).toEqual({ smp: "cpus=2,sockets=1,cores=2,threads=1", memory: "256M" });

    // Running: the description applies, vCPUs and memory wait for a restart and say so.
    const described = (await api.call(VmService, "updateVm", { name: "upd1", description: "third" })).vm!;
    expect({ description: described.description, pending: described.pendingRestart }).toEqual({ description: "third", pending: false });
    const updated = (await api.call(VmService, "updateVm", { name: "upd1", vcpus: 1, memoryMib: 320n })).vm!;
    expect({ vcpus: updated.vcpus, memory: updated.memoryMib, pending: updated.pendingRestart, fields: updated.pendingFields }).toEqual({ vcpus: 1, memory: 320n, pending: true, fields: ["memory_mib", "vcpus"] });
    await expectApiError(api.call(VmService, "updateVm", { name: "upd1", memoryMib: 4_000_000n }), "invalid_argument", "memory_mib");
    expect((await getVm("upd1")).pendingFields).toEqual(["memory_mib", "vcpus"]);
    expect(startedWith(first)).toEqual({ smp: "cpus=2,sockets=1,cores=2,threads=1", memory: "256M" });

    await api.call(VmService, "stopVm", { name: "upd1" });
    await waitStatus("upd1", (v) => v.status?.state === "stopped" && v.status.pid === 0n, "stopped");
    expect((await getVm("upd1")).pendingRestart).toBe(true);
    await api.call(VmService, "startVm", { name: "upd1" });
    const second = await waitStatus("upd1", (v) => v.status?.state === "running" && v.status.pid > 0n && !v.pendingRestart, "running with the pending changes applied");
    seenPids.add(Number(second.status!.pid));
    expect(second.pendingFields).toEqual([]);
    expect(startedWith(second)).toEqual({ smp: "cpus=1,sockets=1,cores=1,threads=1", memory: "320M" });
    await api.call(VmService, "deleteVm", { name: "upd1" });
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
    const updated = cli(["vm", "update", "cli1", "--memory", "48", "--description", "from the CLI", ...conn]);
    expect(updated.code, updated.stderr).toBe(0);
    expect(updated.stdout).toBe("vm cli1 updated\n");
    const shown = cli(["vm", "show", "cli1", "--output", "json", ...conn]);
    expect(JSON.parse(shown.stdout) as { vm: { description: string; memoryMib: number } }).toMatchObject({ vm: { description: "from the CLI", memoryMib: 48 } });
    const deleted = cli(["vm", "delete", "cli1", "--keep-disks", ...conn]);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stdout).toMatch(/^vm cli1 deleted\nkept disk \/.*\/images\/[0-9a-f-]+\/disk0\.raw on n[123]\n$/);
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
