// `trivet host check`: option parsing and the human report, on facts given as data.
import { describe, expect, it } from "vitest";
import type { HostFacts } from "../core/host/facts.ts";
import type { KvmProbeResult } from "../core/host/kvm-probe.ts";
import { UsageError } from "./commands.ts";
import { formatHostCheck, parseHostCheckArgs } from "./host.ts";

const facts: HostFacts = {
  cpu: { model: "AMD EPYC", count: 2, virtualization: "none", flags: ["fpu"] },
  memory: { totalBytes: 24 * 2 ** 30, availableBytes: 22.5 * 2 ** 30 },
  kernel: { release: "6.18.44-fc-v509" },
  qemu: [
    { name: "qemu-system-x86_64", path: "/usr/bin/qemu-system-x86_64", version: "7.2.22" },
    { name: "qemu-img", path: "/usr/bin/qemu-img", version: "7.2.22" },
    { name: "qemu-storage-daemon", path: null, version: null, error: "not found on PATH" },
  ],
};
const key = { kernelRelease: "6.18.44-fc-v509", qemuVersion: "7.2.22", devKvmExists: true };
const hung: KvmProbeResult = { usable: false, code: "timeout", reason: "probe timed out after 3 s", probedAtMs: 1, fromCache: false, key };

describe("parseHostCheckArgs", () => {
  it("accepts --json and --reprobe and rejects anything else", () => {
    expect(parseHostCheckArgs(["--reprobe", "--json"])).toEqual({ json: true, reprobe: true });
    expect(parseHostCheckArgs([])).toEqual({ json: false, reprobe: false });
    expect(() => parseHostCheckArgs(["--jsn"])).toThrow(UsageError);
  });
});

describe("formatHostCheck", () => {
  it("reports a hung KVM as unusable with a warning, and a missing binary", () => {
    const text = formatHostCheck(facts, hung, "/c/kvm-probe.json");
    expect(text).toContain("kvm: unusable (probe timed out after 3 s), using tcg\n");
    expect(text).toMatch(/^warning: KVM is not usable/m);
    expect(text).toContain("memory:  24.0 GiB total, 22.5 GiB available");
    expect(text).toMatch(/qemu-storage-daemon +- +\(not found on PATH\)/);
    expect(text).not.toMatch(/^error:/m);
  });

  it("says where a cached answer comes from and warns of nothing when KVM works", () => {
    const text = formatHostCheck(facts, { usable: true, reason: "probe kernel booted under KVM in 300 ms", probedAtMs: 1, fromCache: true, key }, "/c/kvm-probe.json");
    expect(text).toContain("kvm: usable [cached in /c/kvm-probe.json]");
    expect(text).not.toContain("warning");
  });

  it("flags a host without qemu-system-x86_64", () => {
    const noQemu = { ...facts, qemu: facts.qemu.map((q) => (q.name === "qemu-system-x86_64" ? { ...q, path: null, version: null } : q)) };
    expect(formatHostCheck(noQemu, hung, "/c")).toMatch(/^error: qemu-system-x86_64 is missing/m);
  });
});
