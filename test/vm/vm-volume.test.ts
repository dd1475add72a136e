// A VM whose disk lives on a replicated volume, on three real daemons: the test guest boots on n1
// from a volume image (QEMU's nbd driver on n1's NBD socket) and writes its boot counter on
// /dev/vda; after an ACPI shutdown (the guest syncs, so the write is flushed to every replica)
// n1's daemon is killed with SIGKILL. The image read through n2 has the counter; a new VM on n2
// with the same image (after the first VM is deleted — its image stays) boots and reads it, with
// a CD-ROM from the ISO library attached read-only over NBD. Bad references are refused naming
// the field, and a VM is never placed on a node without a copy of its disk.
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ApiClient } from "../../core/api/client.ts";
import { VmService, type Vm } from "../../core/api/gen/trivet/v1/vm_pb.ts";
import { cli, DaemonCluster, nbdUri, waitForExport, type DaemonNode } from "../cluster/daemon-cluster.ts";
import { ensureGuest, guestReadyMarker, type GuestImage } from "../guest/guest.ts";
import { SerialReader } from "./serial.ts";
import { statusTimeoutMs, vmStatus } from "./vm-status.ts";

/** TCG boot of the test guest on a loaded 2-core machine. */
const bootTimeoutMs = 120_000;
const acpiTimeoutMs = 90_000;
const exportWaitMs = 30_000;
/** After a SIGKILL of a node: a new Raft leader (if it led) and a new writer epoch through the others. */
const takeoverWaitMs = 60_000;
const toolTimeoutMs = 60_000;
const diskBytes = 8 * 1024 * 1024;
/** The guest's boot counter: one ASCII line in sector 8 of /dev/vda (test/guest/init.sh). */
const counterOffset = 8 * 512;


/** The bytes of an export as node `n` serves them (qemu-img over its NBD socket). */
function readExport(n: DaemonNode, exportName: string, dir: string): Buffer {
  const out = path.join(dir, `read-${n.name}-${Date.now()}.raw`);
  const r = spawnSync("qemu-img", ["convert", "-f", "raw", "-O", "raw", nbdUri(n, exportName), out], { encoding: "utf8", timeout: toolTimeoutMs });
  if (r.status !== 0) throw new Error(`qemu-img convert from ${n.name}: ${r.stderr}${r.error ? String(r.error) : ""}`);
  try {
    return fs.readFileSync(out);
  } finally {
    fs.rmSync(out, { force: true });
  }
}

describe("a VM disk on a replicated volume survives the loss of its node", () => {
  const c = new DaemonCluster();
  const nodes: DaemonNode[] = [];
  let guest: GuestImage;
  let api: ApiClient;
  let conn: string[];
  const readers: SerialReader[] = [];

  beforeAll(async () => {
    guest = await ensureGuest();
    // n2 answers the API throughout: n1 is the node that dies.
    const started = await c.startThreeWithVolume();
    nodes.push(...started.nodes);
    ({ api, conn } = started);
  }, 240_000);

  afterAll(async () => {
    for (const r of readers) r.close();
    api?.close();
    await c.stop();
  });

  const { getVm, waitStatus } = vmStatus(() => api, 250);

  async function attachSerial(n: DaemonNode, v: Vm): Promise<SerialReader> {
    const sock = path.join(n.dataDir, "run", v.id, "serial.sock");
    await DaemonCluster.retry(async () => fs.statSync(sock), statusTimeoutMs, 25);
    const reader = await SerialReader.connect(sock);
    readers.push(reader);
    return reader;
  }


  const vmArgs = () => ["--vcpus", "1", "--memory", "256", "--kernel", guest.kernel, "--initrd", guest.initrd, "--append", "console=ttyS0 quiet panic=-1"];

  it("refuses disks and CD-ROMs naming images that cannot be used, and nodes without a copy", async () => {
    expect(cli(["image", "create", "boot", "--volume", "vol", "--size", "8M", ...conn]).code).toBe(0);
    const missing = cli(["vm", "create", "bad1", ...vmArgs(), "--disk", "vol/nope", ...conn]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/disks\[0\]\.image/);
    expect(missing.stderr).toMatch(/no image "nope"/);
    const noVolume = cli(["vm", "create", "bad2", ...vmArgs(), "--disk", "novol/boot", ...conn]);
    expect(noVolume.stderr).toMatch(/volume "novol" does not exist.*\(field disks\[0\]\.volume\)/);
    const wrongKind = cli(["vm", "create", "bad3", ...vmArgs(), "--cdrom", "vol/boot", ...conn]);
    expect(wrongKind.stderr).toMatch(/kind disk; a CD-ROM needs an image of kind iso.*\(field cdrom\.path\)/);
    // A one-brick volume on n3: a VM with its image cannot be placed on n1.
    const dir = path.join(c.dir, "n3-only");
    fs.mkdirSync(dir, { recursive: true });
    expect(cli(["volume", "create", "solo", "--replicas", "1", "--bricks", `n3=${dir}`, ...conn]).code).toBe(0);
    expect(cli(["image", "create", "d", "--volume", "solo", "--size", "1M", ...conn]).code).toBe(0);
    const elsewhere = cli(["vm", "create", "bad4", ...vmArgs(), "--disk", "solo/d", "--node", "n1", ...conn]);
    expect(elsewhere.stderr, elsewhere.stdout).toMatch(/cannot place the VM on node n1: it holds no copy of a volume disk/);
    const placed = cli(["vm", "create", "solo1", ...vmArgs(), "--disk", "solo/d", ...conn]);
    expect(placed.code, placed.stderr).toBe(0);
    expect(placed.stdout).toMatch(/created on n3 /);
    const second = cli(["vm", "create", "solo2", ...vmArgs(), "--disk", "solo/d", ...conn]);
    expect(second.stderr).toMatch(/image solo\/d is already the disk of VM "solo1"/);
    expect((await api.call(VmService, "listVms", {})).vms.map((v) => v.name)).toEqual(["solo1"]);
    // --disk-size with --volume makes the image; a VM that cannot be created takes it back.
    const made = cli(["vm", "create", "new1", ...vmArgs(), "--disk-size", "4M", "--volume", "vol", ...conn]);
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout).toMatch(/^image new1-disk0 created on volume vol\nvm new1 created on /);
    expect(cli(["vm", "show", "new1", ...conn]).stdout).toMatch(/disk0=vol\/new1-disk0/);
    const unplaced = cli(["vm", "create", "new2", ...vmArgs(), "--disk-size", "4M", "--volume", "vol", "--node", "nosuch", ...conn]);
    expect(unplaced.stderr).toMatch(/cannot place the VM on node nosuch/);
    const images = cli(["image", "list", "--volume", "vol", "--output", "json", ...conn]);
    expect((JSON.parse(images.stdout) as { images: Array<{ name: string }> }).images.map((i) => i.name).sort()).toEqual(["boot", "new1-disk0"]);
    const inUse = cli(["image", "delete", "new1-disk0", "--volume", "vol", ...conn]);
    expect(inUse.code).not.toBe(0);
    expect(inUse.stderr).toMatch(/used by VM "new1"/);
    expect(cli(["vm", "delete", "new1", ...conn]).code).toBe(0);
    const deleted = cli(["vm", "delete", "solo1", ...conn]);
    expect(deleted.stdout).toBe("vm solo1 deleted\nkept volume image solo/d (volume images belong to their volume; delete it with trivet image delete)\n");
  }, 120_000);

  it("boots from a volume image on n1, and after n1 is killed the image on n2 has what the guest wrote", async () => {
    await waitForExport(nodes, "vol/boot", exportWaitMs);
    const created = cli(["vm", "create", "g1", ...vmArgs(), "--disk", "vol/boot", "--node", "n1", ...conn]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/^vm g1 created on n1 /);
    const shown = cli(["vm", "show", "g1", ...conn]);
    expect(shown.stdout).toMatch(/disk0=vol\/boot/);
    const vm = await getVm("g1");
    await waitStatus("g1", (v) => v.status?.state === "stopped", "stopped before start");

    await api.call(VmService, "startVm", { name: "g1" });
    const serial = await attachSerial(nodes[0]!, vm);
    const at = await serial.waitForLine(/^disk=vda /, bootTimeoutMs);
    expect(serial.lines[at]!.text).toBe(`disk=vda disk_bytes=${diskBytes} boot_count=0 write=ok`);
    await serial.waitForLine(new RegExp(guestReadyMarker), bootTimeoutMs, at);
    const argv = (JSON.parse(fs.readFileSync(path.join(nodes[0]!.dataDir, "run", vm.id, "runtime.json"), "utf8")) as { argv: string[] }).argv;
    expect(argv.find((a) => a.includes("node-name=drive-disk0"))).toContain(`file.driver=nbd,file.node-name=nbd0-disk0,file.server.type=unix,file.server.path=${path.join(nodes[0]!.dataDir, "run", "nbd.sock")},file.export=vol/boot`);

    await api.call(VmService, "shutdownVm", { name: "g1" });
    await serial.waitForLine(/TRIVET-GUEST-POWEROFF reason=acpi-power-button/, acpiTimeoutMs, at);
    await waitStatus("g1", (v) => v.status?.state === "stopped" && v.status.pid === 0n, "stopped after ACPI shutdown", acpiTimeoutMs);
    serial.close();

    await c.kill(nodes[0]!);
    const bytes = await DaemonCluster.retry(async () => readExport(nodes[1]!, "vol/boot", c.dir), takeoverWaitMs, 1000);
    expect(bytes.length).toBe(diskBytes);
    expect(bytes.subarray(counterOffset, counterOffset + 32).toString("latin1")).toMatch(/^TRIVET-BOOTCOUNT=1\n/);
  }, 420_000);

  it("deleting the VM keeps its image; a VM on n2 boots from it and reads the counter, with a library ISO attached", async () => {
    const iso = path.join(c.dir, "install.iso");
    fs.writeFileSync(path.join(c.dir, "README"), "install me\n");
    execFileSync("genisoimage", ["-quiet", "-output", iso, "-volid", "INSTALL", path.join(c.dir, "README")]);
    const up = await DaemonCluster.retry(async () => {
      const r = cli(["image", "upload", iso, "--volume", "vol", ...conn]);
      if (r.code !== 0) throw new Error(r.stderr);
      return r;
    }, takeoverWaitMs, 1000);
    expect(up.stdout).toMatch(/iso, ready/);

    const deleted = await DaemonCluster.retry(async () => {
      const r = cli(["vm", "delete", "g1", ...conn]);
      if (r.code !== 0) throw new Error(r.stderr);
      return r;
    }, takeoverWaitMs, 1000);
    expect(deleted.stdout).toMatch(/kept volume image vol\/boot/);

    const created = cli(["vm", "create", "g2", ...vmArgs(), "--disk", "vol/boot", "--cdrom", "vol/install.iso", "--node", "n2", ...conn]);
    expect(created.code, created.stderr).toBe(0);
    const vm = await getVm("g2");
    expect(vm.cdromPath).toBe("vol/install.iso");
    await api.call(VmService, "startVm", { name: "g2" });
    const serial = await attachSerial(nodes[1]!, vm);
    const at = await serial.waitForLine(/^disk=vda /, bootTimeoutMs);
    // The counter the guest on n1 wrote before n1 died.
    expect(serial.lines[at]!.text).toBe(`disk=vda disk_bytes=${diskBytes} boot_count=1 write=ok`);
    await serial.waitForLine(new RegExp(guestReadyMarker), bootTimeoutMs, at);
    const running = await waitStatus("g2", (v) => v.status?.state === "running", "running");
    expect(running.status!.error).toBe("");
    const argv = (JSON.parse(fs.readFileSync(path.join(nodes[1]!.dataDir, "run", vm.id, "runtime.json"), "utf8")) as { argv: string[] }).argv;
    expect(argv.find((a) => a.includes("node-name=drive-cdrom"))).toMatch(/read-only=on,file\.driver=nbd,.*file\.export=vol\/install\.iso$/);
    await api.call(VmService, "stopVm", { name: "g2" });
    await waitStatus("g2", (v) => v.status?.state === "stopped", "stopped");
  }, 420_000);
});
