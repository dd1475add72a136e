// Tests of the guest figures: CPU percent from two readings, VmRSS parsing, and the sampler over a
// fake /proc tree with injected clocks (series per process, forgetting guests that went away).
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { cpuPercent, parseStatusRssBytes, VmStatsSampler, type GuestProcess, type ProcReading } from "./vm-stats.ts";

const reading = (cpuTimeMs: number, atMs: number, uptimeMs = 10_000): ProcReading => ({ cpuTimeMs, atMs, uptimeMs, rssBytes: 0 });

describe("cpuPercent", () => {
  it("is the CPU time grown between readings over the wall time between them", () => {
    expect(cpuPercent(reading(1000, 5000), reading(1500, 7000))).toBe(25);
    // Two busy vCPUs: more than one CPU.
    expect(cpuPercent(reading(0, 0), reading(3000, 2000))).toBe(150);
  });

  it("uses the average since the process started for its first reading", () => {
    expect(cpuPercent(undefined, reading(2500, 123, 10_000))).toBe(25);
  });

  it("has no figure when no time passed, and never goes negative", () => {
    expect(cpuPercent(reading(10, 500), reading(20, 500))).toBeNull();
    expect(cpuPercent(undefined, reading(0, 1, 0))).toBeNull();
    expect(cpuPercent(reading(50, 0), reading(40, 1000))).toBe(0);
  });
});

describe("parseStatusRssBytes", () => {
  it("reads VmRSS in kB as bytes", () => {
    expect(parseStatusRssBytes("Name:\tqemu-system-x86\nVmPeak:\t 2000000 kB\nVmRSS:\t  181236 kB\nRssAnon:\t 170000 kB\n")).toBe(181236 * 1024);
  });

  it("refuses a status without VmRSS", () => {
    expect(() => parseStatusRssBytes("Name:\tkthreadd\nState:\tS (sleeping)\n")).toThrow(/no VmRSS/);
  });
});

function statLine(pid: number, utimeTicks: number, stimeTicks: number, startTicks: number): string {
  // Fields 3.. of proc(5): state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime … starttime vsize rss
  return `${pid} (qemu-system-x86) S 1 ${pid} ${pid} 0 -1 0 0 0 0 0 ${utimeTicks} ${stimeTicks} 0 0 20 0 3 0 ${startTicks} 1000000 5000 0\n`;
}

describe("VmStatsSampler", () => {
  let proc: string;
  let mono = 0;
  let guests: GuestProcess[];
  const errors: string[] = [];

  beforeEach(async () => {
    proc = await mkdtemp(join(tmpdir(), "trivet-vmstats-"));
    mono = 1000;
    guests = [{ vmId: "vm-a", pid: 4242, guestMemoryMiB: 256 }];
    errors.length = 0;
  });
  afterEach(() => rm(proc, { recursive: true, force: true }));

  async function writeProc(pid: number, cpuTicks: number, rssKiB: number, hostUptimeS: number, startTicks = 100): Promise<void> {
    await mkdir(join(proc, String(pid)), { recursive: true });
    await writeFile(join(proc, String(pid), "stat"), statLine(pid, cpuTicks, 0, startTicks));
    await writeFile(join(proc, String(pid), "status"), `Name:\tqemu\nVmRSS:\t${rssKiB} kB\n`);
    await writeFile(join(proc, "uptime"), `${hostUptimeS.toFixed(2)} 0.00\n`);
  }

  const sampler = () => new VmStatsSampler({ guests: () => guests, procRoot: proc, monotonicMs: () => mono, wallMs: () => 1_700_000_000_000, onError: (id, e) => errors.push(`${id}: ${e.message}`) });

  it("reports memory, uptime and CPU between samples", async () => {
    const s = sampler();
    // Started at 1 s after boot (100 ticks), now 11 s: 10 s old, 2 s of CPU so far.
    await writeProc(4242, 200, 180_000, 11);
    await s.sampleNow();
    expect(s.snapshot()).toEqual([{ vmId: "vm-a", cpuPercent: 20, memoryRssBytes: 180_000 * 1024, guestMemoryBytes: 256 * 1024 * 1024, uptimeMs: 10_000, sampledAtMs: 1_700_000_000_000 }]);
    // 2 s later, 1.5 s more CPU: 75 %.
    mono += 2000;
    await writeProc(4242, 350, 190_000, 13);
    await s.sampleNow();
    const [one] = s.snapshot();
    expect(one?.cpuPercent).toBeCloseTo(75, 6);
    expect(one?.memoryRssBytes).toBe(190_000 * 1024);
    expect(one?.uptimeMs).toBe(12_000);
  });

  it("starts a new series for a new process of the same VM, and forgets guests that stopped", async () => {
    const s = sampler();
    await writeProc(4242, 900, 1000, 11);
    await s.sampleNow();
    guests = [{ vmId: "vm-a", pid: 5000, guestMemoryMiB: 256 }];
    mono += 1000;
    // The new process is 2 s old with 0.5 s of CPU: its own average (25 %), not a delta against the old pid.
    await writeProc(5000, 50, 1000, 12, 1000);
    await s.sampleNow();
    expect(s.snapshot()[0]?.cpuPercent).toBe(25);
    guests = [];
    await s.sampleNow();
    expect(s.snapshot()).toEqual([]);
  });

  it("drops the figures of a guest whose /proc entry is gone and says why", async () => {
    const s = sampler();
    await writeProc(4242, 10, 1000, 11);
    await s.sampleNow();
    expect(s.snapshot()).toHaveLength(1);
    await rm(join(proc, "4242"), { recursive: true });
    await s.sampleNow();
    expect(s.snapshot()).toEqual([]);
    expect(errors[0]).toMatch(/^vm-a: .*4242/);
  });
});
