// The QEMU spec of a VM record on this node (pure): where its files and sockets live, which
// accelerator it gets, its devices — disks (node-local files or volume images over NBD), NICs (user-mode, or a tap per bridged NIC named from
// the VM id), the CD-ROM and cloud-init seed, OVMF with the VM's own variable store, a VNC socket
// in the run directory — and the boot order numbered onto the devices the VM has.
import { join } from "node:path";
import { isVolumeDisk, type BootDevice, type VmDiskRecord, type VmLocalDiskRecord, type VmRecord } from "../vm/vm-model.ts";
import { tapName } from "./net/tap.ts";
import type { DiskFormat, DiskSource, NbdExport, QemuHostFacts, VmSpec } from "./qemu/spec.ts";

export interface VmPaths {
  runDir: string;
  imagesDir: string;
}

export function vmPaths(dataDir: string, vmId: string): VmPaths {
  return { runDir: join(dataDir, "run", vmId), imagesDir: join(dataDir, "images", vmId) };
}

/** Where the node keeps a VM's node-local disk image. */
export function diskPath(paths: VmPaths, disk: VmLocalDiskRecord): string {
  return join(paths.imagesDir, `${disk.id}.${disk.format}`);
}

/** Kept with the disks (and deleted with them): the guest's UEFI settings and boot entries. */
export function ovmfVarsPath(paths: VmPaths): string {
  return join(paths.imagesDir, "OVMF_VARS.fd");
}

export function seedIsoPath(paths: VmPaths): string {
  return join(paths.runDir, "cidata.iso");
}

export function vncSocketPath(paths: VmPaths): string {
  return join(paths.runDir, "vnc.sock");
}

/**
 * What the agent found on the node for the record: the CD-ROM's ISO path after resolving its
 * name, or its ISO library image's NBD export; the NBD exports of the volume disks, by disk id.
 */
export interface ResolvedDevices {
  cdromPath: string | null;
  cdromExport?: NbdExport | null;
  volumeDisks?: ReadonlyMap<string, NbdExport & { format: DiskFormat }>;
}

function diskSource(vm: VmRecord, paths: VmPaths, d: VmDiskRecord, resolved: ResolvedDevices): DiskSource {
  if (!isVolumeDisk(d)) return { kind: "file", path: diskPath(paths, d), format: d.format };
  const nbd = resolved.volumeDisks?.get(d.id);
  if (nbd === undefined) throw new Error(`starting VM ${vm.name}: disk ${d.id} (image ${d.volume}/${d.image}) was not resolved to an NBD export`);
  return { kind: "nbd", ...nbd };
}

/** Positions 1, 2, 3… of the boot devices the VM has, in its boot order; none with a direct kernel boot. */
export function bootIndexes(vm: VmRecord): Map<BootDevice, number> {
  const s = vm.spec;
  const present: Record<BootDevice, boolean> = { disk: s.disks.length > 0, cdrom: s.cdrom !== null, network: s.nics.length > 0 };
  const indexes = new Map<BootDevice, number>();
  if (s.kernelBoot !== null) return indexes;
  for (const d of s.bootOrder) if (present[d]) indexes.set(d, indexes.size + 1);
  return indexes;
}

export function specFromRecord(vm: VmRecord, paths: VmPaths, facts: Pick<QemuHostFacts, "accelerators">, resolved: ResolvedDevices = { cdromPath: null }): VmSpec {
  const s = vm.spec;
  const accelerator = s.accelerator === "auto" ? (facts.accelerators.includes("kvm") ? "kvm" : "tcg") : s.accelerator;
  const boot = bootIndexes(vm);
  return {
    name: vm.name, uuid: vm.id, vcpus: s.vcpus, memoryMiB: s.memoryMiB, machineType: s.machineType, cpuModel: s.cpuModel,
    firmware: s.firmware === "ovmf" ? { kind: "ovmf", varsPath: ovmfVarsPath(paths) } : { kind: "seabios" }, accelerator,
    disks: s.disks.map((d, i) => ({
      id: d.id, bus: "virtio-blk" as const, source: diskSource(vm, paths, d, resolved),
      // writeback, not none: O_DIRECT is refused by tmpfs and some overlay file systems.
      cache: "writeback" as const, readonly: false, bootIndex: i === 0 ? boot.get("disk") ?? null : null, serial: d.id,
    })),
    cdrom: s.cdrom === null ? null : { isoPath: resolved.cdromExport ? null : resolved.cdromPath, isoExport: resolved.cdromExport ?? null, bootIndex: boot.get("cdrom") ?? null },
    nics: s.nics.map((n, i) => ({
      id: n.id, model: "virtio-net" as const, mac: n.mac,
      backend: n.bridge === "" ? { kind: "user" as const } : { kind: "tap" as const, tapName: tapName(vm.id, i), bridge: n.bridge },
      bootIndex: i === 0 ? boot.get("network") ?? null : null,
    })),
    serial: { socketPath: join(paths.runDir, "serial.sock") },
    graphics: s.display === "vnc" ? { kind: "vnc", listen: { kind: "unix", path: vncSocketPath(paths) } } : { kind: "none" },
    cloudInitIsoPath: s.cloudInit === null ? null : seedIsoPath(paths),
    kernelBoot: s.kernelBoot,
    qmpSocketPath: join(paths.runDir, "qmp.sock"),
    pidFile: join(paths.runDir, "qemu.pid"),
  };
}
