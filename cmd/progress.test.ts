// Progress lines: the figures (percent, bytes, MiB/s, the bar) and how often each kind of output
// writes — a terminal redrawn in place at most every ttyRedrawIntervalMs and ended with a
// newline, a pipe given plain lines at most every plainLineIntervalMs, the final figures once.
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { bar, percentOf, plainLineIntervalMs, Progress, progressLine, rateText, ttyRedrawIntervalMs } from "./progress.ts";

const MiB = 1024 ** 2;

function sink() {
  const chunks: string[] = [];
  const out = new Writable({ write(c: Buffer, _e, done) { chunks.push(c.toString()); done(); } });
  return { out, chunks };
}

describe("progress figures", () => {
  it("computes percent, rate and bar", () => {
    expect(percentOf(0, 4 * MiB)).toBe(0);
    expect(percentOf(MiB, 3 * MiB)).toBe(33);
    expect(percentOf(5, 5)).toBe(100);
    expect(percentOf(0, 0)).toBe(100);
    expect(rateText(10 * MiB, 4_000)).toBe("2.5 MiB/s");
    expect(rateText(MiB, 0)).toBe("- MiB/s");
    expect(bar(MiB, 4 * MiB, 8)).toBe("[##......]");
    expect(bar(4 * MiB, 4 * MiB, 8)).toBe("[########]");
  });

  it("formats one line with or without the bar", () => {
    expect(progressLine("a.iso", { doneBytes: MiB, totalBytes: 4 * MiB, elapsedMs: 500 }, false)).toBe("a.iso   25%  1 MiB / 4 MiB  2.0 MiB/s");
    expect(progressLine("a.iso", { doneBytes: 4 * MiB, totalBytes: 4 * MiB, elapsedMs: 1000 }, true)).toBe(`a.iso  [${"#".repeat(24)}]  100%  4 MiB / 4 MiB  4.0 MiB/s`);
  });
});

describe("Progress", () => {
  it("redraws a terminal line in place, throttled, and ends it with a newline", () => {
    const { out, chunks } = sink();
    let now = 1_000;
    const p = new Progress({ out, tty: true, label: "x", totalBytes: 4 * MiB, nowMs: () => now });
    p.update(MiB);
    now += ttyRedrawIntervalMs / 2;
    p.update(2 * MiB);
    now += ttyRedrawIntervalMs;
    p.update(3 * MiB);
    p.update(4 * MiB);
    p.end(true);
    p.end(true);
    expect(chunks).toHaveLength(4);
    expect(chunks.slice(0, 3).every((c) => c.startsWith("\r") && c.endsWith("\x1b[K"))).toBe(true);
    expect(chunks[0]).toMatch(/ 25% /);
    expect(chunks[1]).toMatch(/ 75% /);
    expect(chunks[2]).toMatch(/100% {2}4 MiB \/ 4 MiB/);
    expect(chunks[3]).toBe("\n");
  });

  it("writes plain lines at most every plainLineIntervalMs into a pipe, and no final duplicate", () => {
    const { out, chunks } = sink();
    let now = 0;
    const p = new Progress({ out, tty: false, label: "x", totalBytes: 10 * MiB, nowMs: () => now });
    for (let i = 1; i <= 10; i++) {
      now += plainLineIntervalMs / 4;
      p.update(i * MiB);
    }
    p.end(true);
    expect(chunks.every((c) => c.endsWith("\n") && !c.includes("\r"))).toBe(true);
    expect(chunks.map((c) => c.match(/(\d+)%/)![1])).toEqual(["10", "50", "90", "100"]);
  });

  it("writes nothing more when ended after a failure", () => {
    const { out, chunks } = sink();
    let now = 0;
    const p = new Progress({ out, tty: false, label: "x", totalBytes: 10 * MiB, nowMs: () => now });
    p.update(MiB);
    now += 10;
    p.update(2 * MiB);
    p.end(false);
    expect(chunks).toHaveLength(1);
  });
});
