// The data a QEMU process is started from: a VM spec (what the host agent derives from the
// replicated VM record plus node-local paths) and the facts of the host it runs on. Plain data
// only; cmdline.ts checks what QEMU itself would reject and turns both into an argv.
// The boot order is carried by the devices themselves (bootIndex on disks, CD-ROM and NICs,
// QEMU's bootindex): the VM record's ordered boot list maps onto 1, 2, 3, … here.

/** A pinned machine type such as "pc-q35-7.2" or "pc-i440fx-7.2" (never an alias like "q35"). */
export type MachineType = string;

/** "host" passes the host CPU through (KVM only); other names are QEMU CPU models. */
export type CpuModel = "host" | "qemu64" | "max" | (string & {});

export type Accelerator = "kvm" | "tcg";

export type Firmware =
  | { kind: "seabios" }
  /** varsPath is this VM's own copy of the OVMF variable store (writable, kept with the VM). */
  | { kind: "ovmf"; varsPath: string };

export type DiskBus = "virtio-blk" | "virtio-scsi" | "sata";
export type DiskFormat = "raw" | "qcow2";
export type CacheMode = "none" | "writeback" | "writethrough" | "directsync" | "unsafe";

/** An image of a replicated volume as the local Trivet node exports it over NBD on a unix socket. */
export interface NbdExport {
  socketPath: string;
  /** "<volume>/<image>". */
  exportName: string;
}

export type DiskSource =
  | { kind: "file"; path: string; format: DiskFormat }
  /** The image's format: a qcow2 image is qcow2 inside the export (QEMU runs qcow2 on top of NBD). */
  | ({ kind: "nbd"; format: DiskFormat } & NbdExport);

export interface DiskSpec {
  /** Stable within the VM; QEMU node and device names are derived from it. */
  id: string;
  bus: DiskBus;
  source: DiskSource;
  cache: CacheMode;
  readonly: boolean;
  /** Position in the boot order (QEMU bootindex, lower boots first); null: not bootable. */
  bootIndex: number | null;
  /** Serial number the guest sees (e.g. /dev/disk/by-id); null: none. */
  serial: string | null;
}

export interface CdromSpec {
  /** null: an empty drive (tray closed, no medium), unless isoExport gives the medium. */
  isoPath: string | null;
  /** An ISO of the library on a replicated volume, attached read-only over NBD (isoPath is null then). */
  isoExport?: NbdExport | null;
  bootIndex: number | null;
}

export type NicBackend =
  /** A tap device that core/host/net created and enslaved to `bridge` before QEMU starts. */
  | { kind: "tap"; tapName: string; bridge: string }
  /** QEMU's user-mode network (SLIRP): no host setup needed; for tests and isolated guests. */
  | { kind: "user" };

export interface NicSpec {
  id: string;
  model: "virtio-net" | "e1000";
  /** Lower-case, colon-separated, unicast, e.g. "52:54:00:12:34:56". */
  mac: string;
  backend: NicBackend;
  bootIndex: number | null;
}

export type VncListen = { kind: "unix"; path: string } | { kind: "tcp"; host: string; display: number };
export type GraphicsSpec = { kind: "none" } | { kind: "vnc"; listen: VncListen };

/** Direct kernel boot (no firmware boot device): the test guest and appliance images use it. */
export interface KernelBoot {
  kernelPath: string;
  initrdPath: string | null;
  append: string;
}

export interface VmSpec {
  name: string;
  uuid: string;
  vcpus: number;
  memoryMiB: number;
  machineType: MachineType;
  cpuModel: CpuModel;
  firmware: Firmware;
  accelerator: Accelerator;
  disks: DiskSpec[];
  cdrom: CdromSpec | null;
  nics: NicSpec[];
  /** The serial console: a unix socket QEMU listens on (the console streams attach to it). */
  serial: { socketPath: string } | null;
  graphics: GraphicsSpec;
  /** A NoCloud seed ISO (volume label "cidata"), attached as a second read-only CD drive. */
  cloudInitIsoPath: string | null;
  kernelBoot: KernelBoot | null;
  qmpSocketPath: string;
  pidFile: string;
}

/** What the builder needs to know about the host; gathered elsewhere (core/host/facts.ts, kvm-probe.ts). */
export interface QemuHostFacts {
  /** e.g. "7.2.22". */
  qemuVersion: string;
  /** As listed by `qemu-system-x86_64 -machine help`, aliases included. */
  machineTypes: string[];
  /** Accelerators that work here; KVM only when the probe booted a guest in time. */
  accelerators: Accelerator[];
  /** Named CPU models this QEMU knows (`-cpu help`); "host", "max" and "qemu64" need not be listed. */
  cpuModels: string[];
  /** Read-only OVMF code image; null when OVMF is not installed. */
  ovmfCodePath: string | null;
  /** /dev/vhost-net is usable: tap NICs get the in-kernel virtio-net data path. */
  vhostNet: boolean;
}
