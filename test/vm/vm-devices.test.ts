// VM devices end to end on a one-node cluster (a real daemon and QEMU under TCG): a VM with a NIC
// on a bridge the node has, a CD-ROM, a cloud-init seed and a VNC display boots the test guest;
// its tap sits on the bridge while it runs and is gone after it stops; the VNC console answers
// through the node's WebSocket; OVMF gets the VM's own variable store; a missing ISO is a clear
// start error; an unknown bridge and too many vCPUs are refused at create, naming the field.
// Needs root (it creates a bridge in the host's network namespace and deletes it afterwards).
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ApiClient } from "../../core/api/client.ts";
import { VmService, type Vm } from "../../core/api/gen/trivet/v1/vm_pb.ts";
import { ApiError } from "../../core/api/server/errors.ts";
import { tapName } from "../../core/host/net/tap.ts";
import { DaemonCluster, type DaemonNode } from "../cluster/daemon-cluster.ts";
import { connectWs, waitFor } from "../console/ws-client.ts";
import { ensureGuest, guestReadyMarker, type GuestImage } from "../guest/guest.ts";
import { SerialReader } from "./serial.ts";
import { statusTimeoutMs, vmStatus } from "./vm-status.ts";

const bootTimeoutMs = 120_000;
const socketWaitMs = 30_000;

const isRoot = process.getuid?.() === 0;
const hasTools = spawnSync("genisoimage", ["-version"]).status === 0 && fs.existsSync("/usr/share/OVMF/OVMF_VARS_4M.fd");
if (!isRoot || !hasTools) console.warn("vm-devices.test.ts: skipped: needs root (creates a bridge), genisoimage and ovmf");

function link(name: string): { master?: string } | null {
  const r = spawnSync("ip", ["-j", "link", "show", "dev", name], { encoding: "utf8" });
  return r.status === 0 ? (JSON.parse(r.stdout) as Array<{ master?: string }>)[0] ?? null : null;
}

describe.skipIf(!isRoot || !hasTools)("VM devices on a one-node cluster", () => {
  const c = new DaemonCluster();
  const bridge = `tvt${process.pid % 100_000}`;
  let node: DaemonNode;
  let image: GuestImage;
  let api: ApiClient;
  let isoPath: string;
  const readers: SerialReader[] = [];

  beforeAll(async () => {
    image = await ensureGuest();
    // Before the daemon starts: the host agent reports the node's bridges with its facts.
    execFileSync("ip", ["link", "add", "name", bridge, "type", "bridge"]);
    isoPath = path.join(c.dir, "install.iso");
    fs.writeFileSync(path.join(c.dir, "README"), "an installer\n");
    execFileSync("genisoimage", ["-quiet", "-output", isoPath, "-volid", "INSTALL", path.join(c.dir, "README")]);
    node = await c.allocate("n1");
    c.init(node);
    c.serve(node);
    await c.login(node);
    api = c.client(node);
  });

  afterAll(async () => {
    for (const r of readers) r.close();
    api?.close();
    await c.stop();
    spawnSync("ip", ["link", "del", "dev", bridge]);
  });

  const { waitStatus } = vmStatus(() => api);
  const runDir = (v: Vm) => path.join(node.dataDir, "run", v.id);
  const kernelBoot = () => ({ kernelPath: image.kernel, initrdPath: image.initrd, append: "console=ttyS0 quiet panic=-1" });

  it("boots a guest with a bridged NIC, CD-ROM, cloud-init and VNC, and takes its tap down after it stops", async () => {
    const created = await DaemonCluster.retry(() => api.call(VmService, "createVm", {
      name: "dev1",
      config: {
        vcpus: 1, memoryMib: 256n, kernelBoot: kernelBoot(), display: "vnc", cdrom: { path: isoPath },
        nics: [{ mac: "" }, { mac: "", bridge }], cloudInit: { user: "alice", sshKeys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBx4y alice@laptop"], hostname: "", password: "" },
      },
    }), statusTimeoutMs);
    const vm = created.vm!;
    expect(vm).toMatchObject({ display: "vnc", cdromPath: isoPath, cloudInitUser: "alice", nics: [{ bridge: "" }, { bridge }] });
    await api.call(VmService, "startVm", { name: "dev1" });
    await DaemonCluster.retry(async () => fs.statSync(path.join(runDir(vm), "serial.sock")), socketWaitMs, 25);
    const serial = await SerialReader.connect(path.join(runDir(vm), "serial.sock"));
    readers.push(serial);
    await serial.waitForLine(new RegExp(guestReadyMarker), bootTimeoutMs);
    await waitStatus("dev1", (v) => v.status?.state === "running", "running");

    const tap = tapName(vm.id, 1);
    expect(link(tap)?.master).toBe(bridge);
    expect(link(tapName(vm.id, 0))).toBeNull();
    const argv = (JSON.parse(fs.readFileSync(path.join(runDir(vm), "runtime.json"), "utf8")) as { argv: string[] }).argv;
    expect(argv).toContain(`tap,id=net-net1,ifname=${tap},script=no,downscript=no${argv.some((a) => a.includes("vhost=on")) ? ",vhost=on" : ""}`);
    expect(argv.some((a) => a.includes(`file.filename=${isoPath}`))).toBe(true);
    expect(execFileSync("isoinfo", ["-d", "-i", path.join(runDir(vm), "cidata.iso")], { encoding: "utf8" })).toMatch(/^Volume id: cidata$/m);

    // The VNC display through the node's authenticated WebSocket: QEMU's RFB greeting arrives.
    const con = await DaemonCluster.retry(async () => {
      const r = await connectWs(Number(node.http.split(":")[1]), c.caPem, "/api/v1/console/vnc/dev1", { bearer: c.adminToken, protocols: ["binary"] });
      if (!r.ok) throw new Error(`VNC console refused: ${r.status} ${r.body}`);
      return r;
    }, statusTimeoutMs);
    await waitFor(con.received, "RFB 003.008", "QEMU's VNC greeting through the WebSocket");
    con.ws.close();

    await api.call(VmService, "stopVm", { name: "dev1" });
    await waitStatus("dev1", (v) => v.status?.state === "stopped", "stopped");
    await DaemonCluster.retry(async () => {
      if (link(tap) !== null) throw new Error(`tap ${tap} still exists`);
    }, statusTimeoutMs);
    await api.call(VmService, "deleteVm", { name: "dev1" });
  });

  it("starts OVMF with the VM's own copy of the variable store", async () => {
    const vm = (await api.call(VmService, "createVm", { name: "uefi1", config: { vcpus: 1, memoryMib: 128n, firmware: "ovmf" }, start: true })).vm!;
    await waitStatus("uefi1", (v) => v.status?.state === "running", "running");
    const vars = path.join(node.dataDir, "images", vm.id, "OVMF_VARS.fd");
    expect(fs.statSync(vars).size).toBe(fs.statSync("/usr/share/OVMF/OVMF_VARS_4M.fd").size);
    await api.call(VmService, "stopVm", { name: "uefi1" });
    await waitStatus("uefi1", (v) => v.status?.state === "stopped", "stopped");
    await api.call(VmService, "deleteVm", { name: "uefi1" });
  });

  it("reports an ISO missing on the node as the start error", async () => {
    const missing = path.join(c.dir, "no-such.iso");
    await api.call(VmService, "createVm", { name: "noiso", config: { vcpus: 1, memoryMib: 64n, cdrom: { path: missing } }, start: true });
    const v = await waitStatus("noiso", (x) => x.status?.state === "failed", "failed");
    expect(v.status!.error).toBe(`starting VM noiso: CD-ROM ${missing}: ISO ${missing} does not exist on this node; copy it there or choose another ISO`);
    await api.call(VmService, "deleteVm", { name: "noiso" });
  });

  it("refuses an unknown bridge and more vCPUs than any node has, naming the field and creating nothing", async () => {
    const refused = async (config: Record<string, unknown>, field: string, message: RegExp) => {
      const err = await api.call(VmService, "createVm", { name: "bad1", config: { vcpus: 1, memoryMib: 64n, ...config } }).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(ApiError);
      expect((err as ApiError).field).toBe(field);
      expect((err as ApiError).message).toMatch(message);
    };
    await refused({ nics: [{ mac: "", bridge: "nosuchbr0" }] }, "config.nics[0].bridge", /bridge nosuchbr0 does not exist on any node/);
    await refused({ nics: [{ mac: "", bridge: "bad/name" }] }, "config.nics[0].bridge", /Linux bridge name/);
    await refused({ vcpus: 64 }, "config.vcpus", /more than any node has/);
    await refused({ display: "spice" }, "config.display", /none or vnc/);
    expect((await api.call(VmService, "listVms", {})).vms.map((v) => v.name)).not.toContain("bad1");
  });
});
