// The replicated-volume images a VM names — disks on a volume image (kind disk) and a CD-ROM from
// the ISO library (kind iso, ready) — checked against the storage state at apply, so a VM never
// records an image that does not exist or is of the wrong kind, and an image is the disk of at
// most one VM (one writer per disk: the coordinator's writer epoch would fence a second one).
import type Database from "better-sqlite3";
import { getImageByName, getVolumeByName } from "../../storage/volume/storage-queries.ts";
import type { ImageRecord } from "../../storage/volume/model.ts";
import type { HostCheckFailure } from "./vm-capacity.ts";
import { libraryRef } from "./vm-devices.ts";
import { isVolumeDisk } from "./vm-model.ts";
import type { VmRecord, VmSpecRecord } from "./vm-model.ts";
import { listVms } from "./vm-queries.ts";

type Refs = Pick<VmSpecRecord, "disks" | "cdrom">;

function refused(field: string, message: string, code: HostCheckFailure["code"] = "failed_precondition"): HostCheckFailure {
  return { ok: false, code, field, message };
}

/** "<volume>/<image>": how the CLI, the NBD export and the messages name a volume image. */
export function volumeImageName(volume: string, image: string): string {
  return `${volume}/${image}`;
}

/** The volume images used as disks by each VM, by "<volume>/<image>". */
export function diskImageUsers(vms: readonly VmRecord[]): Map<string, string> {
  const users = new Map<string, string>();
  for (const vm of vms) for (const d of vm.spec.disks) if (isVolumeDisk(d)) users.set(volumeImageName(d.volume, d.image), vm.name);
  return users;
}

/**
 * Every volume image any VM refers to — disks and library CD-ROMs — as "<volume>/<image>" →
 * the name of one VM using it (what a delete of the image must be refused for).
 */
export function imageUsers(vms: readonly VmRecord[]): Map<string, string> {
  const users = diskImageUsers(vms);
  for (const vm of vms) {
    const path = vm.spec.cdrom?.path;
    if (path !== undefined && !path.startsWith("/") && !users.has(path)) users.set(path, vm.name);
  }
  return users;
}

/** The image, or why it cannot be used: a missing volume or image is named with the way to make it. */
function findImage(db: Database.Database, field: string, volume: string, image: string, kind: string): ImageRecord | HostCheckFailure {
  if (!getVolumeByName(db, volume)) return refused(`${field}.volume`, `volume "${volume}" does not exist (see trivet volume list)`, "not_found");
  const found = getImageByName(db, volume, image);
  if (!found) return refused(`${field}.image`, `volume "${volume}" has no image "${image}"; create it first (trivet image create ${image} --volume ${volume} --kind ${kind} …)`, "not_found");
  return found;
}

/** The first volume image of `spec` that cannot be used by VM `vmId` on node `nodeId`, or null when all can. */
export function checkVolumeRefs(db: Database.Database, spec: Refs, vmId: string, nodeId: number): HostCheckFailure | null {
  const users = diskImageUsers(listVms(db).filter((v) => v.id !== vmId));
  const mine = new Set<string>();
  for (const [i, d] of spec.disks.entries()) {
    if (!isVolumeDisk(d)) continue;
    const field = `disks[${i}]`;
    const name = volumeImageName(d.volume, d.image);
    const image = findImage(db, field, d.volume, d.image, "disk");
    if ("ok" in image) return image;
    if (image.kind !== "disk") return refused(`${field}.image`, `image ${name} is of kind ${image.kind}; a VM disk needs an image of kind disk${image.kind === "iso" ? " (an ISO goes in the CD-ROM)" : ""}`, "invalid_argument");
    if (image.state !== "ready") return refused(`${field}.image`, `image ${name} is still ${image.state}; wait until it is ready`);
    if (!image.replicas.some((r) => r.nodeId === nodeId)) {
      return refused(`${field}.image`, `image ${name} has no copy on node ${nodeId} (its volume's bricks are on nodes ${image.replicas.map((r) => r.nodeId).join(", ")}); the VM must be placed on one of those`);
    }
    if (mine.has(name)) return refused(`${field}.image`, `image ${name} is given twice; a VM may use an image once`, "invalid_argument");
    mine.add(name);
    const user = users.get(name);
    if (user !== undefined) return refused(`${field}.image`, `image ${name} is already the disk of VM "${user}"; only one VM may use a disk image (delete that VM or use another image)`);
  }
  return checkLibraryCdrom(db, spec);
}

function checkLibraryCdrom(db: Database.Database, spec: Refs): HostCheckFailure | null {
  const ref = spec.cdrom ? libraryRef(spec.cdrom.path) : null;
  if (ref === null) return null;
  const image = findImage(db, "cdrom", ref.volume, ref.image, "iso");
  if ("ok" in image) return { ...image, field: "cdrom.path" };
  const name = volumeImageName(ref.volume, ref.image);
  if (image.kind !== "iso") return refused("cdrom.path", `image ${name} is of kind ${image.kind}; a CD-ROM needs an image of kind iso`, "invalid_argument");
  if (image.state !== "ready") return refused("cdrom.path", `ISO ${name} is still ${image.state}; wait until its upload has finished`);
  return null;
}
