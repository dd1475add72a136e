// What a VM's replicated-volume images come to on the node that starts it (pure): each volume
// disk and a CD-ROM from the ISO library become this node's NBD export of the image
// ("<volume>/<image>" on <dataDir>/run/nbd.sock), whose first connection makes this node the
// image's coordinator. The node must hold a copy (a brick of the image's volume): the storage
// node exports only those, so a VM assigned elsewhere gets a start error that says where to move it.
import type { ImageRecord } from "../../storage/volume/model.ts";
import { libraryRef } from "../vm/vm-devices.ts";
import { isVolumeDisk, type VmRecord } from "../vm/vm-model.ts";
import type { DiskFormat, NbdExport } from "./qemu/spec.ts";
import { VmPrepareError } from "./vm-prepare.ts";

/** The volume images of a VM as this node serves them to QEMU. */
export interface VolumeDevices {
  /** By disk id. */
  disks: Map<string, NbdExport & { format: DiskFormat }>;
  cdromExport: NbdExport | null;
}

export interface VolumeLookup {
  /** The image named `image` of the volume named `volume`, from the local replica; null when there is none. */
  image(volume: string, image: string): ImageRecord | null;
  /** A node's name for messages (its id when unknown). */
  nodeName(nodeId: number): string;
}

function exportOf(vm: VmRecord, nodeId: number, socketPath: string, lookup: VolumeLookup, what: string, volume: string, name: string, kind: ImageRecord["kind"]): ImageRecord {
  const exportName = `${volume}/${name}`;
  const doing = `starting VM ${vm.name}: ${what} is image ${exportName}`;
  const image = lookup.image(volume, name);
  if (image === null) throw new VmPrepareError(`${doing}, which does not exist (deleted?); give the VM another image`);
  if (image.kind !== kind) throw new VmPrepareError(`${doing}, of kind ${image.kind}; it must be of kind ${kind}`);
  if (image.state !== "ready") throw new VmPrepareError(`${doing}, which is still ${image.state}; start the VM once it is ready`);
  if (!image.replicas.some((r) => r.nodeId === nodeId)) {
    const holders = image.replicas.map((r) => lookup.nodeName(r.nodeId)).join(", ") || "none";
    throw new VmPrepareError(`${doing}, which has no copy on node ${lookup.nodeName(nodeId)} (its volume's bricks are on: ${holders}); move the VM to one of those nodes or add a brick of that volume on this node`);
  }
  return image;
}

/** The NBD exports of the VM's volume disks and library CD-ROM on node `nodeId` (throws a VmPrepareError naming the image). */
export function resolveVolumeDevices(vm: VmRecord, nodeId: number, socketPath: string, lookup: VolumeLookup): VolumeDevices {
  const disks = new Map<string, NbdExport & { format: DiskFormat }>();
  for (const d of vm.spec.disks) {
    if (!isVolumeDisk(d)) continue;
    const image = exportOf(vm, nodeId, socketPath, lookup, `disk ${d.id}`, d.volume, d.image, "disk");
    disks.set(d.id, { socketPath, exportName: `${d.volume}/${d.image}`, format: image.format });
  }
  const ref = vm.spec.cdrom ? libraryRef(vm.spec.cdrom.path) : null;
  if (ref === null) return { disks, cdromExport: null };
  exportOf(vm, nodeId, socketPath, lookup, "the CD-ROM", ref.volume, ref.image, "iso");
  return { disks, cdromExport: { socketPath, exportName: `${ref.volume}/${ref.image}` } };
}
