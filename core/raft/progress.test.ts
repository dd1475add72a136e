// Unit tests of per-follower flow control: Progress states and the Inflights window.
import { describe, expect, it } from "vitest";
import { Inflights } from "./inflights.ts";
import { Progress } from "./progress.ts";

describe("Inflights", () => {
  it("fills up to maxMsgs, frees acknowledged prefixes, wraps around the ring", () => {
    const inf = new Inflights(3);
    inf.add(5, 10);
    inf.add(7, 10);
    inf.add(9, 10);
    expect(inf.full()).toBe(true);
    expect(() => inf.add(11, 1)).toThrow();
    inf.freeLE(7);
    expect([inf.size(), inf.full()]).toEqual([1, false]);
    inf.add(11, 1);
    inf.add(13, 1); // wraps
    expect(inf.full()).toBe(true);
    inf.freeLE(12);
    expect(inf.size()).toBe(1);
    inf.freeFirstOne();
    expect(inf.size()).toBe(0);
  });

  it("also bounds bytes when asked to", () => {
    const inf = new Inflights(10, 100);
    inf.add(1, 60);
    expect(inf.full()).toBe(false);
    inf.add(2, 60);
    expect(inf.full()).toBe(true);
    inf.freeLE(1);
    expect(inf.full()).toBe(false);
  });

  it("refuses a window smaller than one message", () => {
    expect(() => new Inflights(0)).toThrow(RangeError);
  });
});

describe("Progress", () => {
  it("probe: one App at a time until an answer", () => {
    const pr = new Progress(5, 4, false);
    expect(pr.isPaused()).toBe(false);
    pr.sentEntries(2, 20, 6);
    expect(pr.isPaused()).toBe(true);
    expect(pr.next).toBe(5); // probes do not move next optimistically
    expect(pr.maybeUpdate(6)).toBe(true);
    expect([pr.match, pr.next, pr.isPaused()]).toEqual([6, 7, false]);
  });

  it("replicate: pipelines Apps optimistically up to the window", () => {
    const pr = new Progress(1, 2, false);
    pr.becomeReplicate();
    pr.sentEntries(3, 30, 3);
    pr.sentEntries(2, 20, 5);
    expect([pr.next, pr.isPaused()]).toEqual([6, true]);
    pr.maybeUpdate(3);
    pr.inflights.freeLE(3);
    expect(pr.isPaused()).toBe(false);
  });

  it("ignores stale acks and stale rejections", () => {
    const pr = new Progress(10, 4, false);
    pr.maybeUpdate(8);
    expect(pr.maybeUpdate(7)).toBe(false);
    pr.becomeReplicate();
    expect(pr.maybeDecrTo(8, 3)).toBe(false); // at or below match: stale
    expect(pr.maybeDecrTo(9, 3)).toBe(true);
    expect(pr.next).toBe(9); // replicate falls back to match+1
  });

  it("probe back-off uses the follower's hint but never goes below match+1", () => {
    const pr = new Progress(20, 4, false);
    pr.match = 4;
    expect(pr.maybeDecrTo(18, 10)).toBe(false); // not our latest probe (next-1 = 19)
    expect(pr.maybeDecrTo(19, 10)).toBe(true);
    expect(pr.next).toBe(11);
    expect(pr.maybeDecrTo(10, 1)).toBe(true);
    expect(pr.next).toBe(5);
  });

  it("snapshot: paused until it resolves, then probes after the snapshot", () => {
    const pr = new Progress(3, 4, false);
    pr.becomeSnapshot(50);
    expect(pr.isPaused()).toBe(true);
    pr.becomeProbe();
    expect([pr.state, pr.next]).toEqual(["probe", 51]);
  });
});
