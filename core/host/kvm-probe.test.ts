// The KVM usability decision with a fake host: device checks, the probe verdicts, and the cache
// (hit, key change, corrupt file, --reprobe). No QEMU runs here.
import { describe, expect, it } from "vitest";
import type { BoundedRun } from "./facts.ts";
import { checkKvm, judgeProbeRun, kvmProbeArgv, kvmProbeTimeoutMs, kvmSummary } from "./kvm-probe.ts";
import type { KvmProbeDeps, KvmProbeOptions } from "./kvm-probe.ts";

const panicOutput = "[    0.9] VFS: Unable to mount root fs on unknown-block(0,0)\n[    0.9] Kernel panic - not syncing: VFS: Unable to mount root fs\n";

function exited(code: number, output: string, elapsedMs = 400): BoundedRun {
  return { code, signal: null, timedOut: false, output, elapsedMs };
}
const timedOut: BoundedRun = { code: null, signal: "SIGKILL", timedOut: true, output: "", elapsedMs: kvmProbeTimeoutMs };

interface FakeHost {
  deps: KvmProbeDeps;
  runs: { file: string; args: readonly string[]; timeoutMs: number }[];
  cache: { text: string | null };
}

function fakeHost(over: { device?: { exists: boolean; openError?: string }; kernel?: string | null; runs?: BoundedRun[]; cacheWriteFails?: boolean } = {}): FakeHost {
  const runs: FakeHost["runs"] = [];
  const results = [...(over.runs ?? [exited(0, panicOutput)])];
  const cache = { text: null as string | null };
  let clockMs = 1_000;
  const deps: KvmProbeDeps = {
    checkDevice: async () => over.device ?? { exists: true },
    findKernel: async () => (over.kernel === undefined ? "/boot/vmlinuz-6.1.0-57-cloud-amd64" : over.kernel),
    run: async (file, args, timeoutMs) => {
      runs.push({ file, args, timeoutMs });
      const next = results.shift();
      if (!next) throw new Error("unexpected probe run");
      return next;
    },
    readCache: async () => cache.text,
    writeCache: async (text) => {
      if (over.cacheWriteFails) throw new Error("EROFS: read-only file system");
      cache.text = text;
    },
    nowMs: () => (clockMs += 10),
  };
  return { deps, runs, cache };
}

const opts: KvmProbeOptions = { qemuPath: "/usr/bin/qemu-system-x86_64", qemuVersion: "7.2.22", kernelRelease: "6.18.44" };

describe("checkKvm", () => {
  it("declares KVM unusable without probing when /dev/kvm is missing", async () => {
    const host = fakeHost({ device: { exists: false } });
    const result = await checkKvm(host.deps, opts);
    expect(result).toMatchObject({ usable: false, code: "no-device" });
    expect(kvmSummary(result)).toBe("unusable (/dev/kvm does not exist), using tcg");
    expect(host.runs).toHaveLength(0);
  });

  it("reports why /dev/kvm cannot be opened", async () => {
    const host = fakeHost({ device: { exists: true, openError: "EACCES: permission denied (add this user to the 'kvm' group)" } });
    const result = await checkKvm(host.deps, opts);
    expect(result).toMatchObject({ usable: false, code: "no-access" });
    expect(result.reason).toContain("permission denied");
    expect(host.runs).toHaveLength(0);
  });

  it("boots the probe kernel under KVM with the named timeout and caches a success", async () => {
    const host = fakeHost();
    const result = await checkKvm(host.deps, opts);
    expect(result).toMatchObject({ usable: true, fromCache: false, probeMs: 400 });
    expect(kvmSummary(result)).toBe("usable");
    expect(host.runs).toEqual([{ file: opts.qemuPath, args: kvmProbeArgv("/boot/vmlinuz-6.1.0-57-cloud-amd64"), timeoutMs: kvmProbeTimeoutMs }]);
    expect(JSON.parse(host.cache.text ?? "null")).toMatchObject({ usable: true, key: { kernelRelease: "6.18.44", qemuVersion: "7.2.22", devKvmExists: true } });
  });

  it("turns a hung probe into 'unusable, using tcg' and remembers it", async () => {
    const host = fakeHost({ runs: [timedOut] });
    const first = await checkKvm(host.deps, opts);
    expect(kvmSummary(first)).toBe("unusable (probe timed out after 3 s), using tcg");
    expect(first.code).toBe("timeout");
    const second = await checkKvm(host.deps, opts);
    expect(second).toMatchObject({ usable: false, code: "timeout", fromCache: true });
    expect(host.runs).toHaveLength(1);
  });

  it("probes again on --reprobe", async () => {
    const host = fakeHost({ runs: [timedOut, exited(0, panicOutput)] });
    await checkKvm(host.deps, opts);
    const again = await checkKvm(host.deps, { ...opts, reprobe: true });
    expect(again).toMatchObject({ usable: true, fromCache: false });
    expect(host.runs).toHaveLength(2);
  });

  it("probes again when QEMU, the kernel or /dev/kvm changed since the cached answer", async () => {
    const host = fakeHost({ runs: [timedOut, exited(0, panicOutput), exited(0, panicOutput)] });
    await checkKvm(host.deps, opts);
    expect((await checkKvm(host.deps, { ...opts, qemuVersion: "8.0.0" })).usable).toBe(true);
    expect((await checkKvm(host.deps, { ...opts, qemuVersion: "8.0.0", kernelRelease: "6.19" })).fromCache).toBe(false);
    expect(host.runs).toHaveLength(3);
  });

  it("treats a corrupt cache file as absent", async () => {
    const host = fakeHost();
    host.cache.text = "{not json";
    expect(await checkKvm(host.deps, opts)).toMatchObject({ usable: true, fromCache: false });
    expect(host.runs).toHaveLength(1);
  });

  it("keeps the answer when the cache cannot be written, and says so", async () => {
    const host = fakeHost({ cacheWriteFails: true });
    const result = await checkKvm(host.deps, opts);
    expect(result.usable).toBe(true);
    expect(result.cacheError).toMatch(/EROFS/);
  });

  it("needs QEMU and a kernel to probe with", async () => {
    expect(await checkKvm(fakeHost().deps, { ...opts, qemuPath: null })).toMatchObject({ usable: false, code: "no-qemu" });
    const noKernel = fakeHost({ kernel: null });
    expect(await checkKvm(noKernel.deps, opts)).toMatchObject({ usable: false, code: "no-kernel" });
    expect(noKernel.runs).toHaveLength(0);
  });
});

describe("judgeProbeRun", () => {
  it("requires the kernel's panic line, not just a clean exit", () => {
    expect(judgeProbeRun(exited(0, panicOutput), 3000).usable).toBe(true);
    const silent = judgeProbeRun(exited(0, ""), 3000);
    expect(silent).toMatchObject({ usable: false, code: "failed" });
  });

  it("quotes QEMU's last output line when it fails", () => {
    const v = judgeProbeRun(exited(1, "qemu-system-x86_64: failed to initialize kvm: Permission denied\n"), 3000);
    expect(v.reason).toBe("probe qemu exited with code 1: qemu-system-x86_64: failed to initialize kvm: Permission denied");
  });

  it("names a start failure", () => {
    const v = judgeProbeRun({ code: null, signal: null, timedOut: false, output: "", elapsedMs: 1, spawnError: "spawn ENOENT" }, 3000);
    expect(v).toMatchObject({ usable: false, code: "failed", reason: "could not start qemu: spawn ENOENT" });
  });
});

describe("kvmProbeArgv", () => {
  it("runs guest code under KVM and lets QEMU exit by itself at the kernel's panic", () => {
    const argv = kvmProbeArgv("/boot/vmlinuz-x");
    expect(argv.slice(0, 2)).toEqual(["-accel", "kvm"]);
    expect(argv).toContain("-no-reboot");
    expect(argv[argv.indexOf("-kernel") + 1]).toBe("/boot/vmlinuz-x");
    expect(argv[argv.indexOf("-append") + 1]).toContain("panic=-1");
  });
});
