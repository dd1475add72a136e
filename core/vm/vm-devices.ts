// The device parts of a VM record beyond CPU, memory and disks — NICs on a bridge (with an
// optional VLAN), the CD-ROM, the cloud-init NoCloud seed, the display and the boot order —
// and their pure field checks. The host agent turns them into host setup and QEMU devices.
import { imageNamePattern, volumeNamePattern } from "../../storage/volume/model.ts";
import { absPath, absent, fail, int, obj, str } from "./vm-fields.ts";

export const vlanIdMin = 1;
export const vlanIdMax = 4094;
export const sshKeysMax = 32;
export const sshKeyCharsMax = 8192;
export const passwordCharsMax = 256;
export const hostnameCharsMax = 253;

/** A Linux interface name (IFNAMSIZ 16 with the NUL); "" is user-mode networking (NAT by QEMU). */
export const bridgeNamePattern = /^[A-Za-z0-9_.-]{1,15}$/;
const userPattern = /^[a-z_][a-z0-9_-]{0,31}$/;
const hostnamePattern = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
/** "<type> <base64> [comment]" as in authorized_keys, without options. */
const sshKeyPattern = /^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\n\r\0]*)?$/;

export type BootDevice = "disk" | "cdrom" | "network";
export const bootDevices: readonly BootDevice[] = ["disk", "cdrom", "network"];
/** The network is opt-in: a NIC that is not a boot device skips its option ROM (faster boot). */
export const defaultBootOrder: readonly BootDevice[] = ["disk", "cdrom"];
export type VmDisplay = "none" | "vnc";
export type VmFirmware = "seabios" | "ovmf";

export interface VmNicRecord {
  id: string;
  mac: string;
  /** Linux bridge on the node the NIC's tap joins; "" for user-mode networking. */
  bridge: string;
  /** 802.1Q VLAN id the tap carries untagged (bridge VLAN filtering); null: the bridge's default. */
  vlan: number | null;
}

export interface VmCdromRecord {
  /** An ISO image on the node (absolute path), or "<volume>/<image>" of the ISO library (see libraryRef). */
  path: string;
}

/** The volume and image of an ISO library reference ("<volume>/<image>"), or null for a node path. */
export function libraryRef(path: string): { volume: string; image: string } | null {
  if (path.startsWith("/")) return null;
  const slash = path.indexOf("/");
  return slash < 0 ? null : { volume: path.slice(0, slash), image: path.slice(slash + 1) };
}

export interface VmCloudInitRecord {
  user: string;
  sshKeys: string[];
  /** "" means the VM's name. */
  hostname: string;
  /** A crypt(3) hash ("$6$…") or a plain password; null: password login stays locked. */
  password: string | null;
}

export type VmNicInput = Omit<VmNicRecord, "mac"> & { mac: string | null };

export function checkBridge(field: string, v: unknown): string {
  if (absent(v)) return "";
  if (typeof v !== "string" || !bridgeNamePattern.test(v)) fail(field, `must be a Linux bridge name of 1 to 15 letters, digits, dot, dash or underscore, or empty for user-mode networking (got ${JSON.stringify(v)})`);
  return v;
}

export function checkVlan(field: string, v: unknown, bridge: string): number | null {
  if (v === undefined || v === null || v === 0) return null;
  const vlan = int(field, v, vlanIdMin, vlanIdMax);
  if (bridge === "") fail(field, "needs a bridge: user-mode networking has no VLANs");
  return vlan;
}

export function checkCdrom(v: unknown): VmCdromRecord | null {
  if (v === undefined || v === null) return null;
  const o = obj("cdrom", v);
  if (absent(o.path)) return null;
  if (typeof o.path === "string" && !o.path.startsWith("/")) {
    const ref = libraryRef(o.path);
    if (ref === null || !volumeNamePattern.test(ref.volume) || !imageNamePattern.test(ref.image)) {
      fail("cdrom.path", `must be an absolute ISO path on the node or "<volume>/<image>" of the ISO library (got ${JSON.stringify(o.path)})`);
    }
    return { path: o.path };
  }
  return { path: absPath("cdrom.path", o.path) };
}

export function checkCloudInit(v: unknown): VmCloudInitRecord | null {
  if (v === undefined || v === null) return null;
  const o = obj("cloudInit", v);
  if (typeof o.user !== "string" || !userPattern.test(o.user)) fail("cloudInit.user", `must be a Linux user name: a lower-case letter or underscore, then up to 31 letters, digits, _ or - (got ${JSON.stringify(o.user)})`);
  const keys = o.sshKeys ?? [];
  if (!Array.isArray(keys) || keys.length > sshKeysMax) fail("cloudInit.sshKeys", `must be a list of at most ${sshKeysMax} keys`);
  const sshKeys = keys.map((k, i) => {
    const key = typeof k === "string" ? k.trim() : k;
    if (typeof key !== "string" || key.length > sshKeyCharsMax || !sshKeyPattern.test(key)) fail(`cloudInit.sshKeys[${i}]`, "must be one OpenSSH public key line like \"ssh-ed25519 AAAA… comment\"");
    return key;
  });
  const hostname = absent(o.hostname) ? "" : str("cloudInit.hostname", o.hostname, hostnameCharsMax);
  if (hostname !== "" && !hostnamePattern.test(hostname)) fail("cloudInit.hostname", `must be a lower-case host name (DNS labels joined by dots; got ${JSON.stringify(hostname)})`);
  const password = absent(o.password) ? null : str("cloudInit.password", o.password, passwordCharsMax);
  return { user: o.user, sshKeys, hostname, password };
}

export function checkDisplay(v: unknown): VmDisplay {
  const d = v ?? "none";
  if (d !== "none" && d !== "vnc") fail("display", `must be none or vnc (got ${JSON.stringify(d)})`);
  return d;
}

export function checkFirmware(v: unknown): VmFirmware {
  const f = absent(v) ? "seabios" : v;
  if (f !== "seabios" && f !== "ovmf") fail("firmware", `must be seabios or ovmf (got ${JSON.stringify(f)})`);
  return f;
}

export function checkBootOrder(v: unknown): BootDevice[] {
  if (v === undefined || v === null || (Array.isArray(v) && v.length === 0)) return [...defaultBootOrder];
  if (!Array.isArray(v)) fail("bootOrder", "must be a list of boot devices (disk, cdrom, network)");
  const seen = new Set<BootDevice>();
  v.forEach((d, i) => {
    if (!bootDevices.includes(d as BootDevice)) fail(`bootOrder[${i}]`, `must be disk, cdrom or network (got ${JSON.stringify(d)})`);
    if (seen.has(d as BootDevice)) fail(`bootOrder[${i}]`, `${d} is listed twice`);
    seen.add(d as BootDevice);
  });
  return [...seen];
}
