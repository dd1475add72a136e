// The QEMU facts the command-line builder needs (QemuHostFacts), read from this host: machine
// types and CPU models from QEMU's own help output (parsed by pure functions, tested on sample
// text), the OVMF code image, /dev/vhost-net. Whether KVM works is not decided here: the timed
// probe (core/host/kvm-probe.ts) answers that and the caller passes it in.
import { constants as fsConstants } from "node:fs";
import { access } from "node:fs/promises";
import { parseQemuVersion, runBounded } from "../facts.ts";
import type { QemuHostFacts } from "./spec.ts";

export const qemuHelpTimeoutMs = 5000;
/** Debian/Ubuntu (ovmf package) first; Fedora/RHEL (edk2-ovmf) after. */
export const ovmfCodeCandidates = ["/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/edk2/ovmf/OVMF_CODE.fd"];

/** `qemu-system-x86_64 -machine help`: a header line, then "name  description" lines. */
export function parseMachineHelp(text: string): string[] {
  return text.split("\n").slice(1).map((l) => /^(\S+)\s/.exec(l)?.[1] ?? /^(\S+)$/.exec(l)?.[1]).filter((m): m is string => m !== undefined && m !== "none");
}

/** `qemu-system-x86_64 -cpu help`: "x86 <model>  <description>" lines, then the CPUID flags. */
export function parseCpuHelp(text: string): string[] {
  const models: string[] = [];
  for (const line of text.split("\n")) {
    if (line.startsWith("Recognized CPUID flags")) break;
    const m = /^x86\s+(\S+)/.exec(line);
    if (m?.[1]) models.push(m[1]);
  }
  return models;
}

async function usable(path: string, mode: number): Promise<boolean> {
  return access(path, mode).then(() => true, () => false);
}

export class QemuHostFactsError extends Error {
  readonly code = "qemu-facts";
  constructor(message: string) {
    super(message);
    this.name = "QemuHostFactsError";
  }
}

/** Runs the binary's help commands (each bounded) and looks for OVMF and vhost-net. */
export async function gatherQemuHostFacts(options: { kvmUsable: boolean; qemuBinary?: string }): Promise<QemuHostFacts> {
  const binary = options.qemuBinary ?? "qemu-system-x86_64";
  const run = async (args: string[]): Promise<string> => {
    const r = await runBounded(binary, args, qemuHelpTimeoutMs);
    if (r.code !== 0) {
      const why = r.timedOut ? `timed out after ${qemuHelpTimeoutMs} ms` : r.spawnError ?? `exit code ${r.code}: ${r.output.slice(0, 300)}`;
      throw new QemuHostFactsError(`reading QEMU facts: ${binary} ${args.join(" ")}: ${why}`);
    }
    return r.output;
  };
  const [version, machines, cpus] = await Promise.all([run(["--version"]), run(["-machine", "help"]), run(["-cpu", "help"])]);
  let ovmfCodePath: string | null = null;
  for (const candidate of ovmfCodeCandidates) {
    if (await usable(candidate, fsConstants.R_OK)) {
      ovmfCodePath = candidate;
      break;
    }
  }
  return {
    qemuVersion: parseQemuVersion(version) ?? "unknown",
    machineTypes: parseMachineHelp(machines),
    accelerators: options.kvmUsable ? ["kvm", "tcg"] : ["tcg"],
    cpuModels: parseCpuHelp(cpus),
    ovmfCodePath,
    vhostNet: await usable("/dev/vhost-net", fsConstants.R_OK | fsConstants.W_OK),
  };
}
