// Device flags of `trivet vm create` and `trivet vm update`: NIC bridge and VLAN, CD-ROM,
// cloud-init, firmware, display and boot order, turned into the VmConfig / UpdateVmRequest
// fields. Only the shape is checked here; the API checks the values and names the field.
import { readFile } from "node:fs/promises";
import { UsageError } from "./commands.ts";
import type { FlagSpec } from "./flags.ts";

export const deviceFlags = {
  bridge: { type: "string" }, vlan: { type: "string" }, cdrom: { type: "string" }, firmware: { type: "string" }, display: { type: "string" },
  boot: { type: "string" }, "ci-user": { type: "string" }, "ci-ssh-keys": { type: "string" }, "ci-hostname": { type: "string" }, "ci-password": { type: "string" },
} satisfies FlagSpec;

export const deviceUsage = "[--bridge BR [--vlan ID]] [--cdrom ISO_PATH] [--firmware seabios|ovmf] [--display none|vnc] [--boot disk,cdrom,network] "
  + "[--ci-user USER [--ci-ssh-keys FILE] [--ci-hostname NAME] [--ci-password HASH]]";

type Flags = Record<string, unknown>;
const text = (f: Flags, name: string): string | undefined => (f[name] === undefined ? undefined : String(f[name]));

/** The VLAN flag for a NIC on `bridge` (0: none). */
export function vlanOf(f: Flags, bridge: string): number {
  const v = text(f, "vlan");
  if (v === undefined) return 0;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--vlan must be a VLAN id from 1 to 4094 (got ${JSON.stringify(v)})`);
  if (n !== 0 && bridge === "") throw new UsageError("--vlan needs --bridge (user-mode networking has no VLANs)");
  return n;
}

export function bootOrderOf(f: Flags): string[] | undefined {
  const b = text(f, "boot");
  return b === undefined ? undefined : b.split(",").map((d) => d.trim()).filter((d) => d !== "");
}

/** The public keys of an authorized_keys-style file: one per non-empty, non-comment line. */
async function sshKeysOf(f: Flags): Promise<string[]> {
  const path = text(f, "ci-ssh-keys");
  if (path === undefined) return [];
  const content = await readFile(path, "utf8").catch((err: Error) => {
    throw new UsageError(`--ci-ssh-keys: cannot read ${path}: ${err.message}`);
  });
  return content.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
}

export async function cloudInitOf(f: Flags) {
  const user = text(f, "ci-user");
  const others = ["ci-ssh-keys", "ci-hostname", "ci-password"].filter((n) => f[n] !== undefined);
  if (user === undefined) {
    if (others.length > 0) throw new UsageError(`--${others[0]} needs --ci-user`);
    return undefined;
  }
  return { user, sshKeys: await sshKeysOf(f), hostname: text(f, "ci-hostname") ?? "", password: text(f, "ci-password") ?? "" };
}

/** The VmConfig device fields of `vm create`. */
export async function createDeviceConfig(f: Flags) {
  return {
    firmware: text(f, "firmware") ?? "", display: text(f, "display") ?? "", bootOrder: bootOrderOf(f) ?? [],
    cdrom: text(f, "cdrom") === undefined ? undefined : { path: text(f, "cdrom")! },
    cloudInit: await cloudInitOf(f),
  };
}

/** The UpdateVmRequest device fields of `vm update`: --bridge/--vlan change the first NIC, the others keep theirs. */
export async function updateDeviceFields(f: Flags, current: Array<{ bridge: string; vlan: number }>) {
  if (text(f, "firmware") !== undefined) throw new UsageError("--firmware cannot be changed by update (the guest's boot entries live in its firmware)");
  const nicFlags = text(f, "bridge") !== undefined || text(f, "vlan") !== undefined;
  if (nicFlags && current.length === 0) throw new UsageError("--bridge/--vlan: the VM has no NIC");
  const nics = !nicFlags ? [] : current.map((n, i) => {
    if (i > 0) return n;
    const bridge = text(f, "bridge") ?? n.bridge;
    return { bridge, vlan: text(f, "vlan") === undefined && bridge === n.bridge ? n.vlan : vlanOf(f, bridge) };
  });
  const boot = bootOrderOf(f);
  return {
    nics, display: text(f, "display"), bootOrder: boot === undefined ? undefined : { devices: boot },
    cdrom: text(f, "cdrom") === undefined ? undefined : { path: text(f, "cdrom")! },
    cloudInit: await cloudInitOf(f),
  };
}

export function anyDeviceFlag(f: Flags): boolean {
  return Object.keys(deviceFlags).some((k) => f[k] !== undefined);
}
