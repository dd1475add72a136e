// The cloud-init NoCloud seed of a VM: meta-data and user-data (#cloud-config) from the VM's
// cloud-init record (pure, unit-tested as text), written by genisoimage into an ISO with the
// volume label "cidata" that the VM gets as a second, read-only CD-ROM. Every value is written
// as a JSON string, which YAML reads as the same string, so no user input can break the document.
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { VmCloudInitRecord } from "../../vm/vm-devices.ts";
import { runBounded, type BoundedRun } from "../facts.ts";

export const seedVolumeLabel = "cidata";
export const genisoimageTimeoutMs = 15_000;

export class SeedError extends Error {
  readonly code = "cloud-init-seed";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "SeedError";
  }
}

const q = (s: string): string => JSON.stringify(s);

/** A crypt(3) hash such as "$6$salt$…" (SHA-512) or "$y$…" (yescrypt); anything else is a plain password. */
export function isPasswordHash(password: string): boolean {
  return /^\$(1|5|6|y|2[aby])\$[^\s]+$/.test(password);
}

/** The hostname a VM's seed gives it: the record's, or the VM's name. */
export function seedHostname(ci: VmCloudInitRecord, vmName: string): string {
  return ci.hostname === "" ? vmName : ci.hostname;
}

/** NoCloud meta-data: instance-id is the VM id, so cloud-init's per-instance steps run once per VM. */
export function metaData(vmId: string, hostname: string): string {
  return `instance-id: ${q(vmId)}\nlocal-hostname: ${q(hostname)}\n`;
}

/** The #cloud-config user-data: one sudo user with its SSH keys, and a password only when given. */
export function userData(ci: VmCloudInitRecord, hostname: string): string {
  const lines = ["#cloud-config", `hostname: ${q(hostname)}`, "users:", `  - name: ${q(ci.user)}`, "    shell: \"/bin/bash\"", "    sudo: \"ALL=(ALL) NOPASSWD:ALL\""];
  lines.push(`    lock_passwd: ${ci.password === null ? "true" : "false"}`);
  if (ci.password !== null) lines.push(`    ${isPasswordHash(ci.password) ? "passwd" : "plain_text_passwd"}: ${q(ci.password)}`);
  if (ci.sshKeys.length > 0) lines.push("    ssh_authorized_keys:", ...ci.sshKeys.map((k) => `      - ${q(k)}`));
  lines.push(`ssh_pwauth: ${ci.password === null ? "false" : "true"}`);
  return lines.join("\n") + "\n";
}

export type IsoRunner = (file: string, args: readonly string[], timeoutMs: number) => Promise<BoundedRun>;

/**
 * Writes the seed ISO of a VM to `isoPath` (replacing an older one); the two files go through
 * `workDir`, which is removed afterwards.
 */
export async function writeSeedIso(opts: { isoPath: string; workDir: string; vmId: string; vmName: string; cloudInit: VmCloudInitRecord; run?: IsoRunner }): Promise<void> {
  const hostname = seedHostname(opts.cloudInit, opts.vmName);
  const run = opts.run ?? runBounded;
  await rm(opts.workDir, { recursive: true, force: true });
  await mkdir(opts.workDir, { recursive: true, mode: 0o700 });
  try {
    // user-data may hold a password: readable by the owner only.
    await writeFile(join(opts.workDir, "user-data"), userData(opts.cloudInit, hostname), { mode: 0o600 });
    await writeFile(join(opts.workDir, "meta-data"), metaData(opts.vmId, hostname), { mode: 0o600 });
    await rm(opts.isoPath, { force: true });
    const args = ["-quiet", "-output", opts.isoPath, "-volid", seedVolumeLabel, "-joliet", "-rock", join(opts.workDir, "user-data"), join(opts.workDir, "meta-data")];
    const r = await run("genisoimage", args, genisoimageTimeoutMs);
    if (r.code !== 0) {
      const why = r.timedOut ? `timed out after ${genisoimageTimeoutMs} ms` : r.spawnError ? `${r.spawnError} (install the genisoimage package)` : `exit ${r.code}: ${r.output.trim().slice(0, 500)}`;
      throw new SeedError(`writing the cloud-init seed of VM ${opts.vmName} to ${opts.isoPath}: genisoimage ${why}`);
    }
  } finally {
    await rm(opts.workDir, { recursive: true, force: true });
  }
}
