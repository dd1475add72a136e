// Tests of the agent's side of online disk growth: which disks of a running VM need growing
// (volume disks whose image is now larger than QEMU was last seen with), when a grow is tried
// again, and what a refusal or a slow export leaves in the VM's reported error.
import { describe, expect, it } from "vitest";
import type { ImageRecord } from "../../storage/volume/model.ts";
import type { VmDiskRecord } from "../vm/vm-model.ts";
import type { GrowResult, GrowTarget } from "./qemu/disk-grow.ts";
import { QemuRuntimeError } from "./qemu/rundir.ts";
import { disksToGrow, growDisks, growExportWaitMs, growRetryMs, newGrowState, shouldGrow } from "./vm-grow.ts";

const mib = 1024 * 1024;

function image(name: string, sizeBytes: number, format: "raw" | "qcow2" = "raw", state: ImageRecord["state"] = "ready"): ImageRecord {
  return { id: `id-${name}`, volumeId: "v", name, kind: "disk", format, sizeBytes, state, generation: 1, writerEpoch: 1, writerNodeId: 1, writerClean: false, createdAtMs: 0, replicas: [] };
}

const disks: VmDiskRecord[] = [
  { id: "disk0", volume: "vol", image: "root" },
  { id: "disk1", sizeMiB: 8, format: "raw" },
  { id: "disk2", volume: "vol", image: "data" },
];
const vm = { spec: { disks } };

describe("which disks to grow", () => {
  const images = new Map([["vol/root", image("root", 16 * mib)], ["vol/data", image("data", 64 * mib, "qcow2")]]);
  const lookup = (v: string, i: string) => images.get(`${v}/${i}`) ?? null;

  it("asks QEMU about every volume disk it has not seen, and never about node-local disks", () => {
    expect(disksToGrow(vm, lookup, new Map()).map((j) => j.diskId)).toEqual(["disk0", "disk2"]);
  });

  it("only the disks whose image is larger than QEMU's, with the export size qcow2 needs beyond it", () => {
    const jobs = disksToGrow(vm, lookup, new Map([["disk0", 8 * mib], ["disk2", 64 * mib]]));
    expect(jobs).toEqual([{ diskId: "disk0", image: "vol/root", target: { sizeBytes: 16 * mib, protocolBytes: 16 * mib } }]);
    const qcow = disksToGrow(vm, lookup, new Map([["disk0", 16 * mib], ["disk2", 32 * mib]]));
    expect(qcow).toHaveLength(1);
    expect(qcow[0]!.target.sizeBytes).toBe(64 * mib);
    expect(qcow[0]!.target.protocolBytes).toBeGreaterThan(64 * mib);
  });

  it("skips an image that is gone or not ready", () => {
    const gone = disksToGrow(vm, (_v, i) => (i === "root" ? null : image("data", 64 * mib, "qcow2", "uploading")), new Map());
    expect(gone).toEqual([]);
  });
});

describe("growing and reporting", () => {
  const job = { diskId: "disk0", image: "vol/root", target: { sizeBytes: 16 * mib, protocolBytes: 16 * mib } };
  const runtime = (answer: (id: string, t: GrowTarget) => Promise<GrowResult>) => ({ growDisk: answer });

  it("records the size QEMU confirmed, so the next tick has nothing to do", async () => {
    const s = newGrowState();
    expect(await growDisks("web1", runtime(async () => ({ outcome: "grown", leftovers: [] })), s, [job], () => 0)).toBe(true);
    expect(s.knownBytes.get("disk0")).toBe(16 * mib);
    expect(s.error).toBeNull();
    expect(disksToGrow({ spec: { disks: [disks[0]!] } }, () => image("root", 16 * mib), s.knownBytes)).toEqual([]);
  });

  it("a refusal becomes the VM's error, is not retried for the same size before growRetryMs, and is for a new size", async () => {
    const s = newGrowState();
    const refused = runtime(async () => { throw new QemuRuntimeError("grow-refused", "growing disk disk0 to 16777216 bytes: QEMU refused block_resize: Cannot grow NBD nodes"); });
    expect(await growDisks("web1", refused, s, [job], () => 1000)).toBe(false);
    expect(s.error).toBe("VM web1, image vol/root: growing disk disk0 to 16777216 bytes: QEMU refused block_resize: Cannot grow NBD nodes; the guest sees the new size after the VM's next start");
    expect(shouldGrow(s, [job], 1000 + growRetryMs - 1)).toBe(false);
    expect(shouldGrow(s, [job], 1000 + growRetryMs)).toBe(true);
    expect(shouldGrow(s, [{ ...job, target: { sizeBytes: 32 * mib, protocolBytes: 32 * mib } }], 1001)).toBe(true);
    await growDisks("web1", runtime(async () => ({ outcome: "grown", leftovers: [] })), s, [job], () => 1000 + growRetryMs);
    expect(s.error).toBeNull();
  });

  it("waits for the export quietly, then reports it after growExportWaitMs", async () => {
    const s = newGrowState();
    const notYet = runtime(async () => ({ outcome: "export-not-ready", leftovers: [] }));
    let now = 5000;
    await growDisks("web1", notYet, s, [job], () => now);
    now += growExportWaitMs - 1;
    await growDisks("web1", notYet, s, [job], () => now);
    expect(s.error).toBeNull();
    expect(s.knownBytes.has("disk0")).toBe(false);
    now += 1;
    await growDisks("web1", notYet, s, [job], () => now);
    expect(s.error).toMatch(/^VM web1, image vol\/root: growing disk disk0 to 16777216 bytes: this node's NBD export still serves the old size after 30000 ms/);
  });

  it("nothing is started while a grow runs or when there is nothing to grow", () => {
    expect(shouldGrow({ ...newGrowState(), running: true }, [job], 0)).toBe(false);
    expect(shouldGrow(newGrowState(), [], 0)).toBe(false);
    expect(shouldGrow(newGrowState(), [job], 0)).toBe(true);
  });
});
