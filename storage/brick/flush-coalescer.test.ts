// Group commit: callers share syncs, but never one that started before they asked.
import { describe, expect, it } from "vitest";
import { FlushCoalescer } from "./flush-coalescer.ts";

function fakeSync(): { sync: () => Promise<void>; started: number; finish: (err?: Error) => void } {
  const pending: { resolve: () => void; reject: (e: Error) => void }[] = [];
  const state = {
    started: 0,
    sync: () =>
      new Promise<void>((resolve, reject) => {
        state.started++;
        pending.push({ resolve, reject });
      }),
    finish: (err?: Error) => {
      const p = pending.shift();
      if (err === undefined) p?.resolve();
      else p?.reject(err);
    },
  };
  return state;
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("FlushCoalescer", () => {
  it("runs one sync for a lone flush", async () => {
    const f = fakeSync();
    const c = new FlushCoalescer(f.sync);
    const done = c.flush();
    expect(f.started).toBe(1);
    f.finish();
    await done;
  });

  it("makes flushes that arrive during a sync wait for, and share, the next one", async () => {
    const f = fakeSync();
    const c = new FlushCoalescer(f.sync);
    let firstDone = false;
    let laterDone = 0;
    void c.flush().then(() => (firstDone = true));
    const later = [c.flush(), c.flush(), c.flush()];
    later.forEach((p) => void p.then(() => laterDone++));
    expect(f.started).toBe(1);
    f.finish();
    await tick();
    expect(firstDone).toBe(true);
    expect(laterDone).toBe(0); // their writes may postdate the first sync's start
    expect(f.started).toBe(2);
    const latest = c.flush(); // arrives while the second runs: needs a third
    f.finish();
    await Promise.all(later);
    expect(laterDone).toBe(3);
    await tick();
    expect(f.started).toBe(3);
    f.finish();
    await latest;
  });

  it("reports a failed sync to its callers and still serves the waiting ones", async () => {
    const f = fakeSync();
    const c = new FlushCoalescer(f.sync);
    const first = c.flush();
    const second = c.flush();
    f.finish(new Error("EIO"));
    await expect(first).rejects.toThrow("EIO");
    await tick();
    expect(f.started).toBe(2);
    f.finish();
    await expect(second).resolves.toBeUndefined();
  });
});
