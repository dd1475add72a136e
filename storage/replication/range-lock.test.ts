import { describe, expect, it } from "vitest";
import { RangeLock } from "./range-lock.ts";
import type { Release } from "./range-lock.ts";

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("RangeLock", () => {
  it("grants disjoint ranges at once and overlapping ones in request order", async () => {
    const lock = new RangeLock();
    const r1 = lock.acquire(0, 100);
    const r2 = lock.acquire(100, 100); // adjacent, not overlapping
    expect(typeof r1).toBe("function");
    expect(typeof r2).toBe("function");
    const order: string[] = [];
    const p3 = Promise.resolve(lock.acquire(50, 100)).then((rel) => (order.push("third"), rel));
    const p4 = Promise.resolve(lock.acquire(120, 10)).then((rel) => (order.push("fourth"), rel)); // waits behind third too
    const p5 = lock.acquire(1000, 1); // clear of everything
    expect(typeof p5).toBe("function");
    await tick();
    expect(order).toEqual([]);
    (r1 as Release)();
    await tick();
    expect(order).toEqual([]); // r2 still holds 100..200
    (r2 as Release)();
    await tick();
    expect(order).toEqual(["third"]);
    (await p3)();
    await tick();
    expect(order).toEqual(["third", "fourth"]);
    (await p4)();
    (p5 as Release)();
    expect(lock.held).toBe(0);
  });
});
