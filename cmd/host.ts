// `trivet host check`: what this host offers to run guests — CPU, memory, kernel, the QEMU
// binaries and whether KVM is usable (probed, cached) or guests fall back to TCG.
import { gatherHostFacts } from "../core/host/facts.ts";
import type { HostFacts } from "../core/host/facts.ts";
import { checkKvm, defaultKvmCachePath, hostKvmProbeDeps, kvmSummary } from "../core/host/kvm-probe.ts";
import type { KvmProbeResult } from "../core/host/kvm-probe.ts";
import { UsageError } from "./commands.ts";
import type { Command } from "./commands.ts";

interface HostCheckArgs {
  json: boolean;
  reprobe: boolean;
}

export function parseHostCheckArgs(argv: readonly string[]): HostCheckArgs {
  const args: HostCheckArgs = { json: false, reprobe: false };
  for (const a of argv) {
    if (a === "--json") args.json = true;
    else if (a === "--reprobe") args.reprobe = true;
    else throw new UsageError(`unknown option '${a}' (options: --json, --reprobe)`);
  }
  return args;
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

export function formatHostCheck(facts: HostFacts, kvm: KvmProbeResult, cachePath: string): string {
  const { cpu, memory } = facts;
  const nameWidth = Math.max(...facts.qemu.map((q) => q.name.length));
  const lines = [
    `cpu:     ${cpu.model}, ${cpu.count} logical CPUs, hardware virtualization: ${cpu.virtualization}`,
    `memory:  ${gib(memory.totalBytes)} total, ${gib(memory.availableBytes)} available`,
    `kernel:  ${facts.kernel.release}`,
    "qemu:",
    ...facts.qemu.map((q) => `  ${q.name.padEnd(nameWidth)}  ${q.version ?? "-"}  ${q.path ?? ""}${q.error ? `  (${q.error})` : ""}`.trimEnd()),
    `kvm: ${kvmSummary(kvm)}${kvm.fromCache ? ` [cached in ${cachePath}]` : ""}`,
  ];
  if (!kvm.usable) {
    lines.push("warning: KVM is not usable on this host: guests run under TCG (software emulation), many times slower. Run 'trivet host check --reprobe' after fixing KVM.");
  }
  if (kvm.cacheError) lines.push(`warning: ${kvm.cacheError}`);
  if (facts.qemu.some((q) => q.name === "qemu-system-x86_64" && q.path === null)) {
    lines.push("error: qemu-system-x86_64 is missing: this host cannot run guests (Debian: apt-get install qemu-system-x86)");
  }
  return `${lines.join("\n")}\n`;
}

export const hostCheckCommand: Command = {
  path: ["host", "check"],
  summary: "show this host's CPU, memory, QEMU binaries and whether KVM is usable",
  usage: "[--json] [--reprobe]",
  async run(ctx) {
    const args = parseHostCheckArgs(ctx.argv);
    const facts = await gatherHostFacts();
    const qemu = facts.qemu.find((q) => q.name === "qemu-system-x86_64");
    const cachePath = defaultKvmCachePath();
    const kvm = await checkKvm(hostKvmProbeDeps({ cachePath, kernelRelease: facts.kernel.release }), {
      qemuPath: qemu?.path ?? null,
      qemuVersion: qemu?.version ?? null,
      kernelRelease: facts.kernel.release,
      reprobe: args.reprobe,
    });
    if (args.json) {
      ctx.stdout.write(`${JSON.stringify({ ...facts, kvm: { ...kvm, summary: kvmSummary(kvm), cachePath } }, null, 2)}\n`);
    } else {
      ctx.stdout.write(formatHostCheck(facts, kvm, cachePath));
    }
    return qemu?.path ? 0 : 1;
  },
};
