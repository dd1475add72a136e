// The /proc/stat reading of the benchmarks' machine-wide CPU figure.
import { describe, expect, it } from "vitest";
import { busyCores, cpuTicksOf } from "./machine-cpu.ts";

const stat = (cpu: string): string => `${cpu}\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 1 2 3\n`;

describe("machine CPU", () => {
  it("counts user, nice, system, irq, softirq and steal as busy; idle and iowait only in the total", () => {
    expect(cpuTicksOf(stat("cpu  100 10 50 800 40 5 3 2 7 0"))).toEqual({ busy: 170, total: 1010 });
  });

  it("gives the cores busy between two readings", () => {
    const a = cpuTicksOf(stat("cpu  100 0 100 800 0 0 0 0 0 0"));
    const b = cpuTicksOf(stat("cpu  250 0 150 850 0 0 0 0 0 0"));
    expect(busyCores(a, b, 2)).toBeCloseTo(1.6, 5);
    expect(busyCores(a, a, 2)).toBe(0);
  });

  it("refuses text without a full cpu line, naming what it read", () => {
    expect(() => cpuTicksOf("cpu0 1 2 3\n")).toThrow(/no "cpu" line with eight counters in "cpu0 1 2 3/);
    expect(() => cpuTicksOf("cpu  1 2 3 x 5 6 7 8\n")).toThrow(/no "cpu" line/);
  });
});
