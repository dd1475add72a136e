// The device fields of the VM API messages (VmConfig of CreateVm with its disks, the device fields of
// UpdateVm, the Vm message): checked at the edge with the model's own checks, so the API and the
// state commands agree on what is valid, and mapped to and from the record's shape. A bad field
// is an invalid_argument naming its API path ("config.nics[1].vlan").
import type { ApiError } from "../api/server/errors.ts";
import { invalid } from "../api/server/validation.ts";
import type { UpdateVmRequest, VmCloudInit, VmConfig, VmDisk, VmNic } from "../api/gen/trivet/v1/vm_pb.ts";
import { checkBootOrder, checkCdrom, checkCloudInit, checkDisplay, checkFirmware } from "./vm-devices.ts";
import { VmFieldError } from "./vm-fields.ts";
import { checkDisks, checkNics, isVolumeDisk } from "./vm-model.ts";
import type { VmRecord } from "./vm-model.ts";

/** "cloudInit.sshKeys[0]" -> "cloud_init.ssh_keys[0]": the model's field path as the proto spells it. */
function apiField(prefix: string, field: string): string {
  return prefix + field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function asApiError(prefix: string, err: unknown): ApiError | unknown {
  return err instanceof VmFieldError ? invalid(apiField(prefix, err.field), err.reason) : err;
}

function withPrefix<T>(prefix: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw asApiError(prefix, err);
  }
}

const nicsOf = (nics: VmNic[]) => nics.map((n) => ({ mac: n.mac, bridge: n.bridge, vlan: n.vlan }));
const cloudInitOf = (c: VmCloudInit | undefined) =>
  c === undefined || c.user === "" ? null : { user: c.user, sshKeys: c.sshKeys, hostname: c.hostname, password: c.password };

/** The device part of a create request's spec payload (checked; throws invalid_argument naming the field). */
export function deviceSpecOf(c: VmConfig) {
  return withPrefix("config.", () => ({
    firmware: checkFirmware(c.firmware),
    nics: checkNics(nicsOf(c.nics)).map(({ mac, bridge, vlan }) => ({ mac, bridge, vlan })),
    cdrom: checkCdrom(c.cdrom ?? null),
    cloudInit: checkCloudInit(cloudInitOf(c.cloudInit)),
    display: checkDisplay(c.display || undefined),
    bootOrder: checkBootOrder(c.bootOrder),
  }));
}

/**
 * The disks of a create request in the payload's shape: a size and format for a node-local
 * image, or a volume and image name (checked by the model's rules; the apply checks the image).
 */
export function disksOf(disks: VmDisk[]): Array<{ sizeMiB: number; format: string } | { volume: string; image: string }> {
  const isVolume = (d: VmDisk) => d.volume !== "" || d.image !== "";
  // A size or format given with a volume image is refused by the model (the image has its own).
  withPrefix("config.", () => checkDisks(disks.map((d) => (isVolume(d) ? { volume: d.volume, image: d.image, sizeMiB: d.sizeMib === 0n ? undefined : Number(d.sizeMib), format: d.format || undefined } : { sizeMiB: Number(d.sizeMib), format: d.format || "raw" }))));
  return disks.map((d) => (isVolume(d) ? { volume: d.volume, image: d.image } : { sizeMiB: Number(d.sizeMib), format: d.format || "raw" }));
}

/** The device fields an update request sets, in the vm.update payload's shape (absent: unchanged). */
export function deviceUpdateOf(r: UpdateVmRequest) {
  return withPrefix("", () => {
    const out: Record<string, unknown> = {};
    if (r.nics.length > 0) out.nics = checkNics(nicsOf(r.nics)).map(({ bridge, vlan }) => ({ bridge, vlan }));
    if (r.cdrom !== undefined) out.cdrom = checkCdrom(r.cdrom);
    if (r.cloudInit !== undefined) out.cloudInit = checkCloudInit(cloudInitOf(r.cloudInit));
    if (r.display !== undefined) out.display = checkDisplay(r.display);
    if (r.bootOrder !== undefined) out.bootOrder = checkBootOrder(r.bootOrder.devices);
    return out;
  });
}

/** What the Vm message shows of the devices (never the cloud-init keys or password). */
export function deviceInfo(v: VmRecord) {
  const s = v.spec;
  return {
    nics: s.nics.map((n) => ({ mac: n.mac, bridge: n.bridge, vlan: n.vlan ?? 0 })),
    disks: s.disks.map((d) => (isVolumeDisk(d) ? { id: d.id, volume: d.volume, image: d.image } : { id: d.id, sizeMib: BigInt(d.sizeMiB), format: d.format })),
    firmware: s.firmware, cdromPath: s.cdrom?.path ?? "", display: s.display, bootOrder: s.bootOrder,
    cloudInitUser: s.cloudInit?.user ?? "", cloudInitHostname: s.cloudInit?.hostname ?? "",
  };
}
