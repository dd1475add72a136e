// The agent's resolution of a VM's volume images on its node: each becomes this node's NBD export
// with the image's format; an image without a copy here, gone, of the wrong kind or still
// uploading is a start error that names the VM, the image and what to do.
import { describe, expect, it } from "vitest";
import type { ImageRecord } from "../../storage/volume/model.ts";
import { normalizeSpecRecord, type VmRecord } from "../vm/vm-model.ts";
import { VmPrepareError } from "./vm-prepare.ts";
import { resolveVolumeDevices } from "./vm-volumes.ts";

const socket = "/var/lib/trivet/run/nbd.sock";

function image(name: string, over: Partial<ImageRecord> = {}): ImageRecord {
  return {
    id: "0b8e6a1c-3d2f-4e5a-9b7c-1d2e3f4a5b6c", volumeId: "7d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d", name, kind: "disk", format: "raw", sizeBytes: 1 << 20, state: "ready",
    generation: 1, writerEpoch: 0, writerNodeId: null, writerClean: true, createdAtMs: 1,
    replicas: [1, 2, 3].map((nodeId) => ({ nodeId, inSync: nodeId !== 2, fullHeal: false, healDoneBytes: 0, healTotalBytes: 0, reason: "", dirtyRanges: null })), ...over,
  };
}

function vm(disks: VmRecord["spec"]["disks"], cdrom: string | null = null): VmRecord {
  const spec = normalizeSpecRecord({ vcpus: 1, memoryMiB: 256, machineType: "pc-i440fx-7.2", cpuModel: "qemu64", accelerator: "tcg", disks, kernelBoot: null, cdrom: cdrom === null ? null : { path: cdrom } } as VmRecord["spec"]);
  return { id: "5f0c7c2e-8d1a-4b7e-9c3f-2a6d8e4b1c90", name: "web1", spec, nodeId: 2, desiredState: "running", stopMode: "acpi", desiredIndex: 1, createdAtMs: 1, updatedAtMs: 1, description: "", specIndex: 1, pendingFields: [], action: null, actionIndex: 0 };
}

const lookup = (images: Record<string, ImageRecord>) => ({ image: (v: string, i: string) => images[`${v}/${i}`] ?? null, nodeName: (id: number) => `n${id}` });

describe("resolveVolumeDevices", () => {
  it("maps volume disks (with the image's format) and a library CD-ROM to this node's NBD export; local disks and ISO paths are left alone", () => {
    const images = lookup({ "vol/root": image("root", { format: "qcow2" }), "vol/data": image("data"), "isos/d.iso": image("d.iso", { kind: "iso" }) });
    const r = resolveVolumeDevices(vm([{ id: "disk0", volume: "vol", image: "root" }, { id: "disk1", sizeMiB: 8, format: "raw" }, { id: "disk2", volume: "vol", image: "data" }], "isos/d.iso"), 2, socket, images);
    expect([...r.disks]).toEqual([
      ["disk0", { socketPath: socket, exportName: "vol/root", format: "qcow2" }],
      ["disk2", { socketPath: socket, exportName: "vol/data", format: "raw" }],
    ]);
    expect(r.cdromExport).toEqual({ socketPath: socket, exportName: "isos/d.iso" });
    // A replica out of sync on this node is still a copy: the coordinator reads from an in-sync one.
    expect(resolveVolumeDevices(vm([], "/srv/d.iso"), 2, socket, images)).toEqual({ disks: new Map(), cdromExport: null });
  });

  it("refuses to start on a node without a copy, naming the nodes that have one", () => {
    const images = lookup({ "vol/root": image("root", { replicas: [1, 3].map((nodeId) => ({ nodeId, inSync: true, fullHeal: false, healDoneBytes: 0, healTotalBytes: 0, reason: "", dirtyRanges: null })) }) });
    const start = () => resolveVolumeDevices(vm([{ id: "disk0", volume: "vol", image: "root" }]), 2, socket, images);
    expect(start).toThrow(VmPrepareError);
    expect(start).toThrow("starting VM web1: disk disk0 is image vol/root, which has no copy on node n2 (its volume's bricks are on: n1, n3); move the VM to one of those nodes");
  });

  it("refuses a deleted image, one of the wrong kind and one still uploading", () => {
    const images = lookup({ "vol/iso": image("iso", { kind: "iso" }), "vol/up": image("up", { state: "uploading" }), "isos/disk": image("disk") });
    const start = (disks: VmRecord["spec"]["disks"], cdrom: string | null = null) => () => resolveVolumeDevices(vm(disks, cdrom), 2, socket, images);
    expect(start([{ id: "disk0", volume: "vol", image: "gone" }])).toThrow(/disk disk0 is image vol\/gone, which does not exist/);
    expect(start([{ id: "disk0", volume: "vol", image: "iso" }])).toThrow(/of kind iso; it must be of kind disk/);
    expect(start([{ id: "disk0", volume: "vol", image: "up" }])).toThrow(/still uploading/);
    expect(start([], "isos/disk")).toThrow(/the CD-ROM is image isos\/disk, of kind disk; it must be of kind iso/);
  });
});
