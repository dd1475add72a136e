// Device arguments of the QEMU command-line builder: storage controllers, disks (-blockdev +
// -device, names derived from the disk id; a file or a replicated volume's NBD export), the
// CD-ROM (an ISO file or an ISO library image over NBD) and cloud-init seed drives, and NICs.
// Pure; errors name the spec field. Argument order is the device order, which fixes the PCI
// slots QEMU assigns, so the same spec always gives the guest the same hardware layout.
import { QemuConfigError, checkPath, checkSocketPath, keyValues } from "./options.ts";
import type { CacheMode, DiskSpec, NbdExport, NicSpec, QemuHostFacts, VmSpec } from "./spec.ts";

type Entries = [string, string | number | undefined][];

/** Node names are at most 31 characters; "drive-" leaves 24 for the id. */
const deviceIdPattern = /^[a-z][a-z0-9-]{0,23}$/;
/** "nbd<generation>-<id>" within 31 characters: generations 0-999 with a 24-character id. */
export const protocolGenerationsMax = 1000;

/** The format node of a disk (what its device attaches to). */
export function formatNodeName(diskId: string): string {
  return `drive-${diskId}`;
}

/**
 * The NBD protocol node under a volume disk's format node. Generation 0 is the command line's;
 * each online grow attaches a new connection as the next generation (disk-grow.ts).
 */
export function protocolNodeName(diskId: string, generation: number): string {
  return `nbd${generation}-${diskId}`;
}
/** Ids the builder uses for its own devices. */
const reservedIds = new Set(["cdrom", "cloudinit", "sata0", "scsi0", "vga", "serial0", "qmp"]);
const diskSerialPattern = /^[A-Za-z0-9_.-]{1,20}$/;
const macPattern = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const tapNamePattern = /^[A-Za-z0-9_.-]{1,15}$/;
export const bootIndexMax = 9999;
/** AHCI port 0 holds the CD-ROM and port 1 the cloud-init seed, so sata disks use ports 2-5. */
export const sataFirstDiskPort = 2;
export const sataPorts = 6;
export const scsiTargetsMax = 256;

/** How each cache mode maps onto QEMU's three switches (qemu-block-drivers(7), "cache modes"). */
const cacheSwitches: Record<CacheMode, { direct: "on" | "off"; noFlush: "on" | "off"; writeCache: "on" | "off" }> = {
  none: { direct: "on", noFlush: "off", writeCache: "on" },
  writeback: { direct: "off", noFlush: "off", writeCache: "on" },
  writethrough: { direct: "off", noFlush: "off", writeCache: "off" },
  directsync: { direct: "on", noFlush: "off", writeCache: "off" },
  unsafe: { direct: "off", noFlush: "on", writeCache: "on" },
};

function checkDeviceIds(spec: VmSpec): void {
  const seen = new Set<string>();
  const check = (field: string, id: string): void => {
    if (!deviceIdPattern.test(id)) throw new QemuConfigError(field, `"${id}" is not a valid id: a lower-case letter, then up to 23 letters, digits or dashes`);
    if (reservedIds.has(id)) throw new QemuConfigError(field, `"${id}" is reserved for a device the builder adds; choose another id`);
    if (seen.has(id)) throw new QemuConfigError(field, `"${id}" is used twice among the VM's disks and NICs`);
    seen.add(id);
  };
  spec.disks.forEach((d, i) => check(`disks[${i}].id`, d.id));
  spec.nics.forEach((n, i) => check(`nics[${i}].id`, n.id));
}

function checkBootIndexes(spec: VmSpec): void {
  const seen = new Map<number, string>();
  const check = (field: string, index: number | null): void => {
    if (index === null) return;
    if (!Number.isInteger(index) || index < 0 || index > bootIndexMax) throw new QemuConfigError(field, `${index} is not a boot index (0-${bootIndexMax})`);
    const other = seen.get(index);
    if (other !== undefined) throw new QemuConfigError(field, `${index} is already the boot index of ${other}; give each boot device its own position`);
    seen.set(index, field.replace(/\.bootIndex$/, ""));
  };
  spec.disks.forEach((d, i) => check(`disks[${i}].bootIndex`, d.bootIndex));
  if (spec.cdrom) check("cdrom.bootIndex", spec.cdrom.bootIndex);
  spec.nics.forEach((n, i) => check(`nics[${i}].bootIndex`, n.bootIndex));
}

/** The AHCI and virtio-scsi controllers, each added once when a device needs it, before its devices. */
export function controllerArgs(spec: VmSpec): string[] {
  checkDeviceIds(spec);
  checkBootIndexes(spec);
  const argv: string[] = [];
  const needsSata = spec.cdrom !== null || spec.cloudInitIsoPath !== null || spec.disks.some((d) => d.bus === "sata");
  if (needsSata) argv.push("-device", keyValues([["ahci", undefined], ["id", "sata0"]]));
  if (spec.disks.some((d) => d.bus === "virtio-scsi")) argv.push("-device", keyValues([["virtio-scsi-pci", undefined], ["id", "scsi0"]]));
  return argv;
}

function blockdev(disk: DiskSpec, field: string): string {
  const sw = cacheSwitches[disk.cache];
  if (sw === undefined) throw new QemuConfigError(`${field}.cache`, `"${String(disk.cache)}" is not a cache mode (none, writeback, writethrough, directsync, unsafe)`);
  const src = disk.source;
  let format: string;
  let protocol: Entries;
  if (src.kind === "file") {
    checkPath(`${field}.source.path`, src.path);
    if (src.format !== "raw" && src.format !== "qcow2") throw new QemuConfigError(`${field}.source.format`, `"${String(src.format)}" is not raw or qcow2`);
    format = src.format;
    protocol = [["file.driver", "file"], ["file.filename", src.path]];
  } else {
    if (src.format !== "raw" && src.format !== "qcow2") throw new QemuConfigError(`${field}.source.format`, `"${String(src.format)}" is not raw or qcow2`);
    format = src.format;
    // Named, so an online grow can find and remove it once a larger connection replaces it.
    const [driver, ...rest] = nbdProtocol(`${field}.source`, src);
    protocol = [driver!, ["file.node-name", protocolNodeName(disk.id, 0)], ...rest];
  }
  return keyValues([
    ["driver", format],
    ["node-name", formatNodeName(disk.id)],
    ["read-only", disk.readonly ? "on" : "off"],
    ["cache.direct", sw.direct],
    ["cache.no-flush", sw.noFlush],
    ["discard", "unmap"],
    ...protocol,
  ]);
}

/** The protocol node of an NBD export on a unix socket (the format node sits on top of it). */
function nbdProtocol(field: string, src: NbdExport): Entries {
  checkSocketPath(`${field}.socketPath`, src.socketPath);
  if (src.exportName === "" || /[\n\0]/.test(src.exportName)) throw new QemuConfigError(`${field}.exportName`, "is empty or contains a newline or NUL byte");
  return [["file.driver", "nbd"], ["file.server.type", "unix"], ["file.server.path", src.socketPath], ["file.export", src.exportName]];
}

function diskDevice(disk: DiskSpec, field: string, sataPort: number, scsiTarget: number): string {
  const common: Entries = [["id", disk.id], ["drive", `drive-${disk.id}`], ["write-cache", cacheSwitches[disk.cache].writeCache]];
  if (disk.serial !== null && !diskSerialPattern.test(disk.serial)) {
    throw new QemuConfigError(`${field}.serial`, `"${disk.serial}" is not a disk serial: 1-20 letters, digits, dot, dash or underscore`);
  }
  const tail: Entries = [];
  if (disk.serial !== null) tail.push(["serial", disk.serial]);
  if (disk.bootIndex !== null) tail.push(["bootindex", disk.bootIndex]);
  switch (disk.bus) {
    case "virtio-blk":
      return keyValues([["virtio-blk-pci", undefined], ...common, ...tail]);
    case "virtio-scsi":
      return keyValues([["scsi-hd", undefined], ...common, ["bus", "scsi0.0"], ["channel", 0], ["scsi-id", scsiTarget], ["lun", 0], ...tail]);
    case "sata":
      if (disk.readonly) throw new QemuConfigError(`${field}.bus`, "sata cannot attach a read-only disk (QEMU's ide-hd refuses it); use virtio-blk or virtio-scsi");
      return keyValues([["ide-hd", undefined], ...common, ["bus", `sata0.${sataPort}`], ...tail]);
    default:
      throw new QemuConfigError(`${field}.bus`, `"${String(disk.bus)}" is not a disk bus (virtio-blk, virtio-scsi, sata)`);
  }
}

export function diskArgs(spec: VmSpec): string[] {
  const argv: string[] = [];
  let sataPort = sataFirstDiskPort;
  let scsiTarget = 0;
  spec.disks.forEach((disk, i) => {
    const field = `disks[${i}]`;
    if (disk.bus === "sata" && sataPort >= sataPorts) {
      throw new QemuConfigError(`${field}.bus`, `sata holds at most ${sataPorts - sataFirstDiskPort} disks (the CD-ROM and cloud-init seed use the other ports); use virtio-blk or virtio-scsi`);
    }
    if (disk.bus === "virtio-scsi" && scsiTarget >= scsiTargetsMax) {
      throw new QemuConfigError(`${field}.bus`, `virtio-scsi holds at most ${scsiTargetsMax} disks; use virtio-blk for the rest`);
    }
    argv.push("-blockdev", blockdev(disk, field), "-device", diskDevice(disk, field, sataPort, scsiTarget));
    if (disk.bus === "sata") sataPort++;
    if (disk.bus === "virtio-scsi") scsiTarget++;
  });
  return argv;
}

function isoDrive(field: string, id: string, iso: string | NbdExport): string[] {
  let protocol: Entries;
  if (typeof iso === "string") {
    checkPath(field, iso);
    protocol = [["file.driver", "file"], ["file.filename", iso]];
  } else {
    protocol = nbdProtocol(field, iso);
  }
  return ["-blockdev", keyValues([["driver", "raw"], ["node-name", `drive-${id}`], ["read-only", "on"], ...protocol])];
}

/** The CD-ROM (AHCI port 0, possibly empty) and the cloud-init seed (port 1). */
export function cdromArgs(spec: VmSpec): string[] {
  const argv: string[] = [];
  if (spec.cdrom !== null) {
    const { isoPath, isoExport, bootIndex } = spec.cdrom;
    const device: Entries = [["ide-cd", undefined], ["id", "cdrom"], ["bus", "sata0.0"]];
    if (isoPath !== null && isoExport) throw new QemuConfigError("cdrom.isoExport", "a CD-ROM holds one medium: give isoPath or isoExport, not both");
    const medium = isoExport ? { field: "cdrom.isoExport", iso: isoExport } : isoPath !== null ? { field: "cdrom.isoPath", iso: isoPath } : null;
    if (medium !== null) {
      argv.push(...isoDrive(medium.field, "cdrom", medium.iso));
      device.push(["drive", "drive-cdrom"]);
    }
    if (bootIndex !== null) device.push(["bootindex", bootIndex]);
    argv.push("-device", keyValues(device));
  }
  if (spec.cloudInitIsoPath !== null) {
    argv.push(...isoDrive("cloudInitIsoPath", "cloudinit", spec.cloudInitIsoPath));
    argv.push("-device", keyValues([["ide-cd", undefined], ["id", "cloudinit"], ["bus", "sata0.1"], ["drive", "drive-cloudinit"]]));
  }
  return argv;
}

function netdev(nic: NicSpec, field: string, facts: QemuHostFacts): string {
  const b = nic.backend;
  if (b.kind === "user") return keyValues([["user", undefined], ["id", `net-${nic.id}`]]);
  if (b.kind !== "tap") throw new QemuConfigError(`${field}.backend.kind`, `"${String((b as { kind: unknown }).kind)}" is not tap or user`);
  if (!tapNamePattern.test(b.tapName)) throw new QemuConfigError(`${field}.backend.tapName`, `"${b.tapName}" is not an interface name (1-15 letters, digits, dot, dash, underscore)`);
  const vhost: Entries = facts.vhostNet && nic.model === "virtio-net" ? [["vhost", "on"]] : [];
  return keyValues([["tap", undefined], ["id", `net-${nic.id}`], ["ifname", b.tapName], ["script", "no"], ["downscript", "no"], ...vhost]);
}

const nicDriver: Record<NicSpec["model"], string> = { "virtio-net": "virtio-net-pci", e1000: "e1000" };

export function nicArgs(spec: VmSpec, facts: QemuHostFacts): string[] {
  const argv: string[] = [];
  const macs = new Set<string>();
  spec.nics.forEach((nic, i) => {
    const field = `nics[${i}]`;
    const driver = nicDriver[nic.model];
    if (driver === undefined) throw new QemuConfigError(`${field}.model`, `"${String(nic.model)}" is not a NIC model (virtio-net, e1000)`);
    if (!macPattern.test(nic.mac)) throw new QemuConfigError(`${field}.mac`, `"${nic.mac}" is not a MAC address like 52:54:00:12:34:56 (lower-case hex)`);
    if ((parseInt(nic.mac.slice(0, 2), 16) & 1) === 1) throw new QemuConfigError(`${field}.mac`, `${nic.mac} is a multicast address; a NIC needs a unicast one`);
    if (macs.has(nic.mac)) throw new QemuConfigError(`${field}.mac`, `${nic.mac} is used by another NIC of this VM`);
    macs.add(nic.mac);
    // A NIC that is not a boot device needs no option ROM: skipping iPXE saves boot time and memory.
    const boot: Entries = nic.bootIndex === null ? [["romfile", ""]] : [["bootindex", nic.bootIndex]];
    argv.push("-netdev", netdev(nic, field, facts));
    argv.push("-device", keyValues([[driver, undefined], ["id", nic.id], ["netdev", `net-${nic.id}`], ["mac", nic.mac], ...boot]));
  });
  return argv;
}
