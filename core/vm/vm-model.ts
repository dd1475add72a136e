// The VM record as the replicated state keeps it (the spec a user asked for, with what the
// cluster pinned at creation: machine type, MACs, node) and the pure checks of its fields. The
// host agent turns a record plus node-local paths into the QEMU VmSpec of core/host/qemu.
// Records written before a field existed are read through normalizeSpecRecord (its default).
import { checkBootOrder, checkBridge, checkCdrom, checkCloudInit, checkDisplay, checkFirmware, checkVlan, defaultBootOrder } from "./vm-devices.ts";
import type { BootDevice, VmCdromRecord, VmCloudInitRecord, VmDisplay, VmFirmware, VmNicInput, VmNicRecord } from "./vm-devices.ts";
import { imageNamePattern, volumeNamePattern } from "../../storage/volume/model.ts";
import { absPath, absent, fail, int, obj, str } from "./vm-fields.ts";

export { VmFieldError } from "./vm-fields.ts";
export type { BootDevice, VmCdromRecord, VmCloudInitRecord, VmDisplay, VmFirmware, VmNicInput, VmNicRecord } from "./vm-devices.ts";

export const vmVcpusMax = 64;
export const vmMemoryMiBMin = 16;
/** Upper bound of the payload check; the real bound is the largest node (checked at apply). */
export const vmMemoryMiBMax = 4 * 1024 * 1024;
export const vmDisksMax = 8;
export const vmNicsMax = 8;
export const vmDiskSizeMiBMax = 16 * 1024 * 1024;
export const vmAppendCharsMax = 4096;
export const vmDescriptionCharsMax = 1024;

export const vmNamePattern = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const macPattern = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
export const pinnedMachinePattern = /^pc-(q35|i440fx)-\d+\.\d+$/;
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const cpuModelPattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export type DesiredState = "running" | "stopped" | "paused";
/** How a VM is brought to "stopped": the ACPI power button (then forced after a timeout) or at once. */
export type StopMode = "acpi" | "force";
export type VmAccelerator = "auto" | "kvm" | "tcg";
/** One-shot power actions on a running VM (not a desired state: each request acts once). */
export type PowerAction = "reboot" | "reset";
/** Spec fields that a running QEMU cannot take on: they apply at the next start. */
export type RestartField = "vcpus" | "memory_mib" | "nics" | "cdrom" | "cloud_init" | "display" | "boot_order";

/** A disk image the VM's node keeps in its own images directory (created at the first start). */
export interface VmLocalDiskRecord {
  id: string;
  sizeMiB: number;
  format: "raw" | "qcow2";
}

/** An existing image (kind disk) of a replicated volume, reached through the node's NBD export; size and format are the image's. */
export interface VmVolumeDiskRecord {
  id: string;
  volume: string;
  image: string;
}

export type VmDiskRecord = VmLocalDiskRecord | VmVolumeDiskRecord;

export function isVolumeDisk(d: VmDiskRecord): d is VmVolumeDiskRecord {
  return "volume" in d;
}

export interface VmKernelBootRecord {
  kernelPath: string;
  initrdPath: string | null;
  append: string;
}

export interface VmSpecRecord {
  vcpus: number;
  memoryMiB: number;
  machineType: string;
  cpuModel: string;
  firmware: VmFirmware;
  accelerator: VmAccelerator;
  disks: VmDiskRecord[];
  nics: VmNicRecord[];
  kernelBoot: VmKernelBootRecord | null;
  cdrom: VmCdromRecord | null;
  cloudInit: VmCloudInitRecord | null;
  display: VmDisplay;
  /** Boot devices in order; the agent numbers the ones the VM has 1, 2, 3 (QEMU bootindex). */
  bootOrder: BootDevice[];
}

export interface VmRecord {
  id: string;
  name: string;
  spec: VmSpecRecord;
  nodeId: number;
  desiredState: DesiredState;
  stopMode: StopMode;
  /** Raft index of the last change of the desired state: the agent acts once per change. */
  desiredIndex: number;
  createdAtMs: number;
  updatedAtMs: number;
  description: string;
  /** Raft index of the last change of the spec; the agent reports the one its QEMU was started from. */
  specIndex: number;
  /** Fields changed while the VM ran, applied at its next start; cleared once a start reports the newer spec. */
  pendingFields: RestartField[];
  action: PowerAction | null;
  /** Raft index of the last power action request: the agent carries out each once. */
  actionIndex: number;
}

export interface VmStatusRecord {
  vmId: string;
  nodeId: number;
  state: string;
  pid: number | null;
  startedAtMs: number | null;
  error: string | null;
  /** The desiredIndex the agent last acted on (so a guest that powered off is not restarted after a daemon restart). */
  actedIndex: number;
  reportedAtMs: number;
  /** The specIndex the running (or last) QEMU was started from. */
  specIndex: number;
  /** The actionIndex the agent last carried out. */
  actionIndex: number;
  /** What it did for it: "reboot-reset" (no guest agent to ask for a reboot) or "reset". */
  lastAction: string | null;
  lastActionAtMs: number | null;
}

/** What a node's host agent reports about its capacity and QEMU, for placement and validation. */
export interface VmHostRecord {
  nodeId: number;
  memoryMiB: number;
  cpus: number;
  machineTypes: string[];
  accelerators: string[];
  reportedAtMs: number;
  /** Where the node keeps disk images (<imagesRoot>/<vm id>/<disk>.<format>); "" before it said. */
  imagesRoot: string;
  /** Linux bridges the node has (NICs may join only these). */
  bridges: string[];
}

export function checkDescription(v: unknown): string {
  return str("description", v ?? "", vmDescriptionCharsMax);
}

export function checkVmName(v: unknown): string {
  if (typeof v !== "string" || !vmNamePattern.test(v)) fail("name", `must be a lower-case DNS label of 1 to 63 characters (got ${JSON.stringify(v)})`);
  return v;
}

/** Lower-case, colon-separated, unicast and locally administered or QEMU's 52:54:00 prefix. */
export function checkMac(field: string, v: unknown): string {
  if (typeof v !== "string" || !macPattern.test(v)) fail(field, `must be a MAC address like 52:54:00:12:34:56 (got ${JSON.stringify(v)})`);
  if (parseInt(v.slice(0, 2), 16) & 1) fail(field, `${v} is a multicast address; a NIC needs a unicast one`);
  return v;
}

export function checkUuid(field: string, v: unknown): string {
  if (typeof v !== "string" || !uuidPattern.test(v)) fail(field, "must be a lower-case RFC 4122 UUID");
  return v;
}

/** The MAC of the n-th allocation: QEMU's 52:54:00 prefix and the low 24 bits of n. */
export function macFromNumber(n: number): string {
  const low = n & 0xffffff;
  return ["52", "54", "00", (low >> 16) & 0xff, (low >> 8) & 0xff, low & 0xff].map((b) => (typeof b === "string" ? b : b.toString(16).padStart(2, "0"))).join(":");
}

/** The disks of a spec: node-local images by size and format, or existing volume images by name. */
export function checkDisks(v: unknown): VmDiskRecord[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.length > vmDisksMax) fail("disks", `must be a list of at most ${vmDisksMax} disks`);
  return v.map((d, i): VmDiskRecord => {
    const o = obj(`disks[${i}]`, d);
    if (!absent(o.volume) || !absent(o.image)) return volumeDisk(i, o);
    const format = o.format ?? "raw";
    if (format !== "raw" && format !== "qcow2") fail(`disks[${i}].format`, `must be raw or qcow2 (got ${JSON.stringify(format)})`);
    return { id: `disk${i}`, sizeMiB: int(`disks[${i}].sizeMiB`, o.sizeMiB, 1, vmDiskSizeMiBMax), format };
  });
}

/** A disk on a volume image: both names, by the storage layer's own rules; no size or format of its own. */
function volumeDisk(i: number, o: Record<string, unknown>): VmVolumeDiskRecord {
  const field = `disks[${i}]`;
  if (absent(o.volume) || absent(o.image)) fail(absent(o.volume) ? `${field}.volume` : `${field}.image`, "a volume disk needs both the volume and the image name");
  if (typeof o.volume !== "string" || !volumeNamePattern.test(o.volume)) fail(`${field}.volume`, `must be a volume name, a lower-case DNS label (got ${JSON.stringify(o.volume)})`);
  if (typeof o.image !== "string" || !imageNamePattern.test(o.image)) fail(`${field}.image`, `must be an image name: 1 to 128 characters of a-z, 0-9, ".", "_", "-" (got ${JSON.stringify(o.image)})`);
  if (!absent(o.sizeMiB) || !absent(o.format)) fail(`${field}.volume`, "a volume disk takes its size and format from the image; give either a size or a volume image, not both");
  return { id: `disk${i}`, volume: o.volume, image: o.image };
}

/** NICs as given: a MAC, or null for one the apply allocates; a bridge ("" user-mode) and VLAN. */
export function checkNics(v: unknown): VmNicInput[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.length > vmNicsMax) fail("nics", `must be a list of at most ${vmNicsMax} NICs`);
  return v.map((n, i) => {
    const o = obj(`nics[${i}]`, n);
    const bridge = checkBridge(`nics[${i}].bridge`, o.bridge);
    return {
      id: `net${i}`, mac: o.mac === undefined || o.mac === null || o.mac === "" ? null : checkMac(`nics[${i}].mac`, o.mac),
      bridge, vlan: checkVlan(`nics[${i}].vlan`, o.vlan, bridge),
    };
  });
}

function kernelBoot(v: unknown): VmKernelBootRecord | null {
  if (v === undefined || v === null) return null;
  const o = obj("kernelBoot", v);
  const initrd = o.initrdPath === undefined || o.initrdPath === null || o.initrdPath === "" ? null : absPath("kernelBoot.initrdPath", o.initrdPath);
  return { kernelPath: absPath("kernelBoot.kernelPath", o.kernelPath), initrdPath: initrd, append: str("kernelBoot.append", o.append ?? "", vmAppendCharsMax) };
}

export type VmSpecInput = Omit<VmSpecRecord, "nics"> & { nics: VmNicInput[] };

/** Checks a requested spec (pure); machine type and memory are checked against nodes at apply. */
export function checkVmSpec(v: unknown): VmSpecInput {
  const o = obj("spec", v);
  const machineType = o.machineType;
  if (typeof machineType !== "string" || !pinnedMachinePattern.test(machineType)) {
    fail("machineType", `must be a pinned machine type such as pc-i440fx-7.2 or pc-q35-7.2 (got ${JSON.stringify(machineType)})`);
  }
  const cpuModel = o.cpuModel ?? "qemu64";
  if (typeof cpuModel !== "string" || !cpuModelPattern.test(cpuModel)) fail("cpuModel", `must be a CPU model name (got ${JSON.stringify(cpuModel)})`);
  const firmware = checkFirmware(o.firmware);
  const accelerator = o.accelerator ?? "auto";
  if (accelerator !== "auto" && accelerator !== "kvm" && accelerator !== "tcg") fail("accelerator", `must be auto, kvm or tcg (got ${JSON.stringify(accelerator)})`);
  return {
    vcpus: int("vcpus", o.vcpus, 1, vmVcpusMax),
    memoryMiB: int("memoryMiB", o.memoryMiB, vmMemoryMiBMin, vmMemoryMiBMax),
    machineType,
    cpuModel,
    firmware,
    accelerator,
    disks: checkDisks(o.disks),
    nics: checkNics(o.nics),
    kernelBoot: kernelBoot(o.kernelBoot),
    cdrom: checkCdrom(o.cdrom),
    cloudInit: checkCloudInit(o.cloudInit),
    display: checkDisplay(o.display),
    bootOrder: checkBootOrder(o.bootOrder),
  };
}

/** A stored spec with the defaults of fields added after it was written (no migration rewrites the JSON). */
export function normalizeSpecRecord(raw: VmSpecRecord): VmSpecRecord {
  const r = raw as Partial<VmSpecRecord> & Pick<VmSpecRecord, "vcpus" | "memoryMiB" | "machineType" | "cpuModel" | "accelerator" | "disks" | "kernelBoot">;
  return {
    ...r,
    firmware: r.firmware ?? "seabios",
    nics: (r.nics ?? []).map((n) => ({ ...n, bridge: n.bridge ?? "", vlan: n.vlan ?? null })),
    cdrom: r.cdrom ?? null,
    cloudInit: r.cloudInit ?? null,
    display: r.display ?? "none",
    bootOrder: r.bootOrder ?? [...defaultBootOrder],
  };
}

/** Least-loaded node that fits: the most memory left after the VMs assigned to it; null when none fits. */
export function placeVm(hosts: readonly VmHostRecord[], assignedMiB: ReadonlyMap<number, number>, memoryMiB: number, eligible: (h: VmHostRecord) => boolean = () => true): number | null {
  let best: { nodeId: number; free: number } | null = null;
  for (const h of hosts) {
    const free = h.memoryMiB - (assignedMiB.get(h.nodeId) ?? 0);
    if (free < memoryMiB || !eligible(h)) continue;
    if (!best || free > best.free || (free === best.free && h.nodeId < best.nodeId)) best = { nodeId: h.nodeId, free };
  }
  return best?.nodeId ?? null;
}
