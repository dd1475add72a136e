// Chart geometry: the y-axis top and the line's path.
import { describe, expect, it } from "vitest";
import { chartLabel, linePath, niceMax } from "./line-path.ts";

describe("line chart geometry", () => {
  it("rounds the top of the axis up to 1, 2 or 5 times a power of ten", () => {
    expect(niceMax(0)).toBe(1);
    expect(niceMax(3)).toBe(5);
    expect(niceMax(7)).toBe(10);
    expect(niceMax(1500)).toBe(2000);
    expect(niceMax(2000)).toBe(2000);
  });

  it("maps time to x over the window and value to y from the bottom", () => {
    const box = { width: 100, height: 50 };
    expect(linePath([{ atMs: 0, value: 0 }, { atMs: 50, value: 5 }, { atMs: 100, value: 10 }], box, 0, 100, 10)).toBe("M0 50 L50 25 L100 0");
    // Before the window and above the axis are clamped to its edges.
    expect(linePath([{ atMs: -20, value: 20 }], box, 0, 100, 10)).toBe("M0 0 L1 0");
    expect(linePath([], box, 0, 100, 10)).toBe("");
  });

  it("labels the chart with the latest value of each series", () => {
    const label = chartLabel("vCPUs", [{ name: "cluster", points: [{ atMs: 1, value: 2 }, { atMs: 2, value: 5 }] }, { name: "n1", points: [] }], (v) => `${v} cores`);
    expect(label).toBe("vCPUs: cluster 5 cores, n1 no data yet");
  });
});
