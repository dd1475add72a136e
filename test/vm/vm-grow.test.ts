// Growing the disk of a running VM (issue #6), on three real daemons: the test guest boots on n1
// from an 8 MiB image on a replicated volume; `trivet image resize` grows the image to 16 MiB and
// the guest, still the same QEMU process, reads the new size from /sys/block/vda/size (its disk
// got a new NBD connection and a block_resize, core/host/qemu/disk-grow.ts). The guest writes a
// line past the old end, reads it back, and every replica's brick file holds it. A second grow
// through the API (24 MiB) replaces the connection the first one added. A qcow2 image grows the
// same way (its export first gets room for qcow2's metadata, then QEMU grows the qcow2 node).
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ApiClient } from "../../core/api/client.ts";
import { ImageService } from "../../core/api/gen/trivet/v1/storage_pb.ts";
import { VmService, type Vm } from "../../core/api/gen/trivet/v1/vm_pb.ts";
import { cli, DaemonCluster, waitForExport, type DaemonNode } from "../cluster/daemon-cluster.ts";
import { ensureGuest, guestReadyMarker, type GuestImage } from "../guest/guest.ts";
import { SerialReader } from "./serial.ts";
import { statusTimeoutMs, vmStatus } from "./vm-status.ts";

/** TCG boot of the test guest on a loaded 2-core machine. */
const bootTimeoutMs = 120_000;
const exportWaitMs = 30_000;
/** From the resize's commit until the guest sees the size: an agent tick, a storage sync (1 s), the QMP steps. */
const growSeenTimeoutMs = 60_000;
/** One shell command's answer on the serial console. */
const shellAnswerTimeoutMs = 10_000;
const shellPollPauseMs = 500;
/** Writes are acknowledged by a quorum; the last replica may land a moment later. */
const replicaWaitMs = 30_000;
const mib = 1024 * 1024;
/** A sector past the image's first 8 MiB (sector 16384). */
const grownSector = 20_000;
const marker = "TRIVET-GROWN-AREA";
const readBack = `echo 3 >/proc/sys/vm/drop_caches; dd if=/dev/vda bs=512 skip=${grownSector} count=1 2>/dev/null | head -n 1`;


describe("a running VM sees its volume disk grow without a restart", () => {
  const c = new DaemonCluster();
  const nodes: DaemonNode[] = [];
  let guest: GuestImage;
  let api: ApiClient;
  let conn: string[];
  const serials: SerialReader[] = [];

  beforeAll(async () => {
    guest = await ensureGuest();
    const started = await c.startThreeWithVolume();
    nodes.push(...started.nodes);
    ({ api, conn } = started);
  }, 240_000);

  afterAll(async () => {
    for (const s of serials) s.close();
    api?.close();
    await c.stop();
  });

  const { getVm, waitStatus } = vmStatus(() => api, 250);

  /** Runs a command in the guest's shell; its output is the value of the first "<tag>=" line after it. */
  async function shell(s: SerialReader, tag: string, command: string): Promise<string> {
    const from = s.lines.length;
    s.write(`echo ${tag}=$(${command})\n`);
    // The echoed command line also contains "<tag>=": the answer is the line that starts with it.
    const at = await s.waitForLine(new RegExp(`^${tag}=[^$]*$`), shellAnswerTimeoutMs, from);
    return s.lines[at]!.text.slice(tag.length + 1);
  }

  /** Polls the guest's view of /dev/vda's size (512-byte sectors) until it is `bytes`. */
  async function waitGuestSize(s: SerialReader, bytes: number): Promise<void> {
    let seen = "";
    const deadline = Date.now() + growSeenTimeoutMs;
    while (Date.now() < deadline) {
      seen = await shell(s, "vdasize", "cat /sys/block/vda/size");
      if (seen === String(bytes / 512)) return;
      await new Promise((r) => setTimeout(r, shellPollPauseMs));
    }
    throw new Error(`the guest still sees ${seen} sectors on vda after ${growSeenTimeoutMs} ms, not ${bytes / 512}\n${s.tail()}`);
  }


  /** Creates VM `name` on n1 with volume image `image` as its disk, starts it and waits for the guest's shell. */
  async function boot(name: string, image: string, format: "raw" | "qcow2"): Promise<{ vm: Vm; s: SerialReader }> {
    expect(cli(["image", "create", image, "--volume", "vol", "--size", "8M", "--format", format, ...conn]).code).toBe(0);
    await waitForExport(nodes, `vol/${image}`, exportWaitMs);
    const created = cli(["vm", "create", name, "--vcpus", "1", "--memory", "256", "--kernel", guest.kernel, "--initrd", guest.initrd, "--append", "console=ttyS0 quiet panic=-1", "--disk", `vol/${image}`, "--node", "n1", ...conn]);
    expect(created.code, created.stderr).toBe(0);
    const vm = await getVm(name);
    await api.call(VmService, "startVm", { name });
    const sock = path.join(nodes[0]!.dataDir, "run", vm.id, "serial.sock");
    await DaemonCluster.retry(async () => fs.statSync(sock), statusTimeoutMs, 25);
    const s = await SerialReader.connect(sock);
    serials.push(s);
    const at = await s.waitForLine(/^disk=vda /, bootTimeoutMs);
    expect(s.lines[at]!.text).toMatch(new RegExp(`^disk=vda disk_bytes=${8 * mib} `));
    await s.waitForLine(new RegExp(guestReadyMarker), bootTimeoutMs, at);
    return { vm: await waitStatus(name, (v) => v.status?.state === "running", "running"), s };
  }

  /** Past the old end: writes a sector, drops the guest's page cache, reads it back from the disk. */
  async function writeAndReadGrownArea(s: SerialReader): Promise<void> {
    expect(await shell(s, "wrote", `printf '${marker}\\n' >/tmp/m && dd if=/tmp/m of=/dev/vda bs=512 seek=${grownSector} count=1 conv=sync,notrunc 2>/dev/null && sync && echo ok`)).toBe("ok");
    expect(await shell(s, "readback", readBack)).toBe(marker);
  }

  it("grows through the CLI and the API while the guest runs; the guest writes and reads the grown area", async () => {
    const { vm: before, s } = await boot("g1", "grow", "raw");
    expect(await shell(s, "vdasize", "cat /sys/block/vda/size")).toBe(String((8 * mib) / 512));

    const resized = cli(["image", "resize", "grow", "--volume", "vol", "--size", "16M", ...conn]);
    expect(resized.code, resized.stderr).toBe(0);
    expect(resized.stdout).toBe("image grow is now 16 MiB\n");
    await waitGuestSize(s, 16 * mib);

    await writeAndReadGrownArea(s);

    // The second grow, through the API: the reply lists no VM as pending a restart.
    const r = await api.call(ImageService, "resizeImage", { volume: "vol", name: "grow", sizeBytes: BigInt(24 * mib) });
    expect(r.vmsPendingRestart).toEqual([]);
    await waitGuestSize(s, 24 * mib);
    expect(await shell(s, "readback2", readBack)).toBe(marker);

    // Still the same QEMU, with no error reported.
    const after = await getVm("g1");
    expect(after.status!.pid).toBe(before.status!.pid);
    expect(after.status!.state).toBe("running");
    expect(after.status!.error).toBe("");

    // Every replica's brick file has the guest's line in the grown area.
    const id = (await api.call(ImageService, "getImage", { volume: "vol", name: "grow" })).image!.id;
    for (const n of nodes) {
      const file = path.join(n.dataDir, "bricks", "vol", "images", `${id}.raw`);
      await DaemonCluster.retry(async () => {
        const fd = fs.openSync(file, "r");
        try {
          expect(fs.fstatSync(fd).size).toBe(24 * mib);
          const buf = Buffer.alloc(512);
          fs.readSync(fd, buf, 0, 512, grownSector * 512);
          expect(buf.toString("latin1")).toMatch(new RegExp(`^${marker}\\n`));
        } finally {
          fs.closeSync(fd);
        }
      }, replicaWaitMs, 500);
    }
  }, 600_000);

  it("grows a qcow2 image: the export first gets room for qcow2's metadata, then QEMU grows the qcow2 node", async () => {
    const { vm: before, s } = await boot("g2", "growq", "qcow2");
    const resized = cli(["image", "resize", "growq", "--volume", "vol", "--size", "16M", ...conn]);
    expect(resized.stdout).toBe("image growq is now 16 MiB\n");
    await waitGuestSize(s, 16 * mib);
    await writeAndReadGrownArea(s);
    const after = await getVm("g2");
    expect(after.status!.pid).toBe(before.status!.pid);
    expect(after.status!.error).toBe("");
  }, 300_000);
});
