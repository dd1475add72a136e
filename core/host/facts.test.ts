// Host facts: the pure parsers on sample text from real machines, and the bounded runner that
// the gatherer and the KVM probe use to run QEMU without ever hanging.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { HostFactsError, parseCpuinfo, parseMeminfo, parseQemuVersion, runBounded } from "./facts.ts";

const amdNoVirt = `processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
flags\t\t: fpu vme de pse tsc msr pae hypervisor lahf_lm avx2

processor\t: 1
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
flags\t\t: fpu vme de pse tsc msr pae hypervisor lahf_lm avx2
`;

const intelVmx = `processor\t: 0
model name\t: Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz
flags\t\t: fpu vme de vmx ept sse4_2

processor\t: 1
model name\t: Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz
flags\t\t: fpu vme de vmx ept sse4_2

processor\t: 2
model name\t: Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz
flags\t\t: fpu vme de vmx ept sse4_2

processor\t: 3
model name\t: Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz
flags\t\t: fpu vme de vmx ept sse4_2
`;

describe("parseCpuinfo", () => {
  it("counts processors and reads the model of a host without hardware virtualization", () => {
    const cpu = parseCpuinfo(amdNoVirt);
    expect(cpu).toMatchObject({ model: "AMD EPYC", count: 2, virtualization: "none" });
    expect(cpu.flags).toContain("hypervisor");
  });

  it("detects Intel VT-x and AMD-V", () => {
    expect(parseCpuinfo(intelVmx)).toMatchObject({ count: 4, virtualization: "vmx", model: "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz" });
    expect(parseCpuinfo(amdNoVirt.replaceAll("lahf_lm", "svm lahf_lm")).virtualization).toBe("svm");
  });

  it("does not mistake a flag that merely contains 'vmx' for VT-x", () => {
    expect(parseCpuinfo(amdNoVirt.replaceAll("avx2", "vmx_ept_like avx2")).virtualization).toBe("none");
  });

  it("rejects text without processors", () => {
    expect(() => parseCpuinfo("garbage\n")).toThrow(HostFactsError);
  });
});

describe("parseMeminfo", () => {
  it("converts KiB to bytes", () => {
    const text = "MemTotal:       24684100 kB\nMemFree:        23435868 kB\nMemAvailable:   24001296 kB\n";
    expect(parseMeminfo(text)).toEqual({ totalBytes: 24684100 * 1024, availableBytes: 24001296 * 1024 });
  });

  it("names the missing line", () => {
    expect(() => parseMeminfo("MemTotal: 1 kB\n")).toThrow(/MemAvailable/);
  });
});

describe("parseQemuVersion", () => {
  it("reads the version of each QEMU binary from its first line", () => {
    expect(parseQemuVersion("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright (c) 2003-2022 Fabrice Bellard\n")).toBe("7.2.22");
    expect(parseQemuVersion("qemu-img version 8.2.2 (Debian 1:8.2.2+ds-0ubuntu1)\n")).toBe("8.2.2");
    expect(parseQemuVersion("qemu-storage-daemon version 9.0.0\n")).toBe("9.0.0");
  });

  it("returns null when there is no version", () => {
    expect(parseQemuVersion("qemu-system-x86_64: unknown option\nversion 1.2.3")).toBeNull();
  });
});

/** A killed process stays a zombie until someone reaps it; that counts as not running. */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^\S+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

describe("runBounded", () => {
  it("captures merged output and the exit code", async () => {
    const run = await runBounded("sh", ["-c", "echo out; echo err >&2; exit 3"], 5000);
    expect(run).toMatchObject({ code: 3, timedOut: false });
    expect(run.output).toContain("out");
    expect(run.output).toContain("err");
  });

  it("kills the whole process group on timeout without waiting for it", async () => {
    const run = await runBounded("sh", ["-c", "sleep 30 & echo $!; wait"], 300);
    expect(run.timedOut).toBe(true);
    expect(run.elapsedMs).toBeLessThan(2000);
    const grandchild = Number(run.output.trim());
    expect(grandchild).toBeGreaterThan(0);
    const deadline = Date.now() + 2000;
    while (isRunning(grandchild) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(isRunning(grandchild)).toBe(false);
  });

  it("reports a program that cannot be started", async () => {
    const run = await runBounded("/nonexistent/qemu", [], 1000);
    expect(run.spawnError).toMatch(/ENOENT/);
  });
});
