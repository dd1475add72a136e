// What the host agent sets up on the node before QEMU starts a VM, and takes down after it
// exits: the CD-ROM's ISO (a name resolved by an injected resolver, then checked to exist here),
// the VM's copy of the OVMF variable store, the cloud-init seed ISO, and a tap per bridged NIC.
// A failure is a VmPrepareError whose message says what was being done and what is missing.
import { copyFile, mkdir, stat } from "node:fs/promises";
import { join } from "node:path";
import type { VmRecord } from "../vm/vm-model.ts";
import { writeSeedIso } from "./cloud-init/seed.ts";
import type { NetRunner } from "./net/bridge.ts";
import { createTap, planTaps, removeTap, tapName } from "./net/tap.ts";
import { ovmfVarsPath, seedIsoPath, type ResolvedDevices, type VmPaths } from "./vm-spec.ts";
import { vmNicsMax } from "../vm/vm-model.ts";
import { libraryRef } from "../vm/vm-devices.ts";

export class VmPrepareError extends Error {
  readonly code = "vm-prepare";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "VmPrepareError";
  }
}

/**
 * Maps the CD-ROM reference of a VM record to an absolute ISO path on this node (by default the
 * reference is that path). "<volume>/<image>" references of the ISO library never come here.
 */
export type IsoResolver = (ref: string, vm: VmRecord) => Promise<string>;
export const pathIsoResolver: IsoResolver = async (ref) => ref;

export interface PrepareDeps {
  net: NetRunner;
  resolveIso: IsoResolver;
  /** The OVMF code image QEMU uses (host facts); its VARS template sits beside it. */
  ovmfCodePath: string | null;
  writeSeed?: typeof writeSeedIso;
}

/** OVMF_CODE_4M.fd -> OVMF_VARS_4M.fd (the variable store template built with that code image). */
export function ovmfVarsTemplate(codePath: string): string {
  return codePath.replace(/OVMF_CODE([^/]*)$/, "OVMF_VARS$1");
}

async function resolveCdrom(vm: VmRecord, deps: PrepareDeps): Promise<string | null> {
  const ref = vm.spec.cdrom?.path;
  // An ISO library image is not a file here: it is served over NBD (vm-volumes.ts).
  if (ref === undefined || libraryRef(ref) !== null) return null;
  const what = `starting VM ${vm.name}: CD-ROM ${ref}`;
  const path = await deps.resolveIso(ref, vm).catch((err: unknown) => {
    throw new VmPrepareError(`${what}: ${(err as Error).message}`, { cause: err });
  });
  const st = await stat(path).catch(() => null);
  if (!st?.isFile()) throw new VmPrepareError(`${what}: ISO ${path} does not exist on this node${st ? " (not a file)" : ""}; copy it there or choose another ISO`);
  return path;
}

async function ensureOvmfVars(vm: VmRecord, paths: VmPaths, deps: PrepareDeps): Promise<void> {
  if (vm.spec.firmware !== "ovmf") return;
  if (deps.ovmfCodePath === null) throw new VmPrepareError(`starting VM ${vm.name}: firmware ovmf is not installed on this node (install the ovmf package) or use seabios`);
  const vars = ovmfVarsPath(paths);
  if (await stat(vars).then(() => true, () => false)) return;
  const template = ovmfVarsTemplate(deps.ovmfCodePath);
  await mkdir(paths.imagesDir, { recursive: true, mode: 0o750 });
  await copyFile(template, vars).catch((err: unknown) => {
    throw new VmPrepareError(`starting VM ${vm.name}: copying the OVMF variable store ${template}: ${(err as Error).message}`, { cause: err });
  });
}

/** Creates the taps of the bridged NICs; on a failure removes those already made. */
async function setUpTaps(vm: VmRecord, net: NetRunner): Promise<string[]> {
  const made: string[] = [];
  try {
    for (const tap of planTaps(vm.id, vm.spec.nics).values()) {
      await createTap(net, tap);
      made.push(tap.name);
    }
  } catch (err) {
    for (const name of made) await removeTap(net, name).catch(() => undefined);
    throw new VmPrepareError(`starting VM ${vm.name}: ${(err as Error).message}`, { cause: err });
  }
  return made;
}

/** Sets up everything QEMU needs on the node; returns the resolved devices and the taps made. */
export async function prepareVmDevices(vm: VmRecord, paths: VmPaths, deps: PrepareDeps): Promise<{ resolved: ResolvedDevices; taps: string[] }> {
  const cdromPath = await resolveCdrom(vm, deps);
  await ensureOvmfVars(vm, paths, deps);
  if (vm.spec.cloudInit !== null) {
    await mkdir(paths.runDir, { recursive: true, mode: 0o750 });
    await (deps.writeSeed ?? writeSeedIso)({ isoPath: seedIsoPath(paths), workDir: join(paths.runDir, "cidata"), vmId: vm.id, vmName: vm.name, cloudInit: vm.spec.cloudInit });
  }
  const taps = await setUpTaps(vm, deps.net);
  return { resolved: { cdromPath }, taps };
}

/** The taps a VM may have left behind, from its id alone (its record may be gone). */
export function possibleTapNames(vmId: string): string[] {
  return Array.from({ length: vmNicsMax }, (_, i) => tapName(vmId, i));
}

/** Removes taps; errors are returned (to be logged), not thrown, so every tap gets its try. */
export async function releaseTaps(net: NetRunner, names: readonly string[]): Promise<string[]> {
  const errors: string[] = [];
  for (const name of names) await removeTap(net, name).catch((err: unknown) => errors.push((err as Error).message));
  return errors;
}
