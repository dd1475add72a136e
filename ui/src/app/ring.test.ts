// The bounded lists behind the recent events and the usage charts.
import { describe, expect, it } from "vitest";
import { createRing } from "./ring.ts";

describe("ring", () => {
  it("keeps the newest items up to its bound, oldest first, with a new snapshot per push", () => {
    const r = createRing<number>(3);
    let told = 0;
    const off = r.subscribe(() => told++);
    const empty = r.items();
    for (const n of [1, 2, 3, 4, 5]) r.push(n);
    expect(r.items()).toEqual([3, 4, 5]);
    expect(empty).toEqual([]);
    expect(told).toBe(5);
    const before = r.items();
    expect(r.items()).toBe(before);
    off();
    r.push(6);
    expect(told).toBe(5);
    expect(r.items()).toEqual([4, 5, 6]);
    expect(before).toEqual([3, 4, 5]);
  });
});
