import { describe, expect, it } from "vitest";
import { DirtyMap } from "./dirty-map.ts";

const K = 1024;

describe("DirtyMap", () => {
  it("marks every extent a range touches and merges neighbours", () => {
    const m = new DirtyMap(1024 * K, 64 * K);
    m.mark(10, 1); // extent 0
    m.mark(64 * K - 1, 2); // extents 0 and 1
    m.mark(5 * 64 * K, 64 * K); // extent 5 exactly
    expect(m.dirtyExtents).toBe(3);
    expect([...m.ranges()]).toEqual([
      { offset: 0, length: 128 * K },
      { offset: 320 * K, length: 64 * K },
    ]);
    expect(m.isDirty(130 * K, 1)).toBe(false);
    expect(m.isDirty(300 * K, 30 * K)).toBe(true);
  });

  it("splits long runs at maxBytes and clips the last extent to the image size", () => {
    const m = new DirtyMap(200 * K, 64 * K);
    m.markAll();
    expect(m.dirtyBytes).toBe(200 * K);
    expect([...m.ranges(128 * K)]).toEqual([
      { offset: 0, length: 128 * K },
      { offset: 128 * K, length: 72 * K },
    ]);
  });

  it("clears only whole extents, or the tail at the image end", () => {
    const m = new DirtyMap(200 * K, 64 * K);
    m.markAll();
    m.clear(10, 64 * K); // covers no whole extent
    expect(m.dirtyExtents).toBe(4);
    m.clear(0, 128 * K);
    m.clear(192 * K, 8 * K); // the short last extent
    expect([...m.ranges()]).toEqual([{ offset: 128 * K, length: 64 * K }]);
    m.clear(128 * K, 64 * K);
    expect(m.isClean).toBe(true);
  });

  it("finds sparse bits in a large map and grows clean", () => {
    const m = new DirtyMap(64 * 1024 * 1024 * K, 64 * K); // 64 GiB, 1 Mi extents
    m.mark(40 * 1024 * 1024 * K + 5, 1);
    expect([...m.ranges()]).toEqual([{ offset: 40 * 1024 * 1024 * K, length: 64 * K }]);
    m.grow(65 * 1024 * 1024 * K);
    expect(m.sizeBytes).toBe(65 * 1024 * 1024 * K);
    m.mark(64 * 1024 * 1024 * K, 1);
    expect(m.dirtyExtents).toBe(2);
  });
});
