import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { DirtyMap } from "./dirty-map.ts";
import { FakeTarget } from "./fake-target.ts";
import { healReplica } from "./heal.ts";
import type { HealAccess } from "./heal.ts";

const M = 1024 * 1024;

/** Heal access over two fake copies: src is the in-sync source, dst the replica being healed. */
function access(src: FakeTarget, dst: FakeTarget, dirty: DirtyMap, copies: number[][]): HealAccess {
  const byId = new Map([[src.nodeId, src], [dst.nodeId, dst]]);
  return {
    healSource: () => src.nodeId,
    checksums: (nodeId, o, n, c) => byId.get(nodeId)!.checksums(o, n, c),
    copyForHeal: async (_nodeId, o, n) => {
      copies.push([o, n]);
      await dst.write(o, await src.read(o, n));
      dirty.clear(o, n);
    },
  };
}

/** A fake clock whose sleep advances it; records every sleep. */
function fakePacing() {
  const p = { now: 0, sleeps: [] as number[] };
  return {
    p,
    pacing: { nowMs: () => p.now, sleep: async (ms: number) => void (p.sleeps.push(ms), (p.now += ms)) },
  };
}

describe("healReplica", () => {
  it("copies only the dirty regions, throttled to bytesPerSec", async () => {
    const size = 16 * M;
    const src = new FakeTarget("a", size);
    const dst = new FakeTarget("c", size);
    src.bytes = randomBytes(size);
    dst.bytes = Buffer.from(src.bytes);
    const dirty = new DirtyMap(size);
    for (const at of [M, 5 * M + 70_000, 9 * M]) {
      src.bytes.fill(0xab, at, at + 3000);
      dirty.mark(at, 3000);
    }
    dirty.mark(2 * M, 3 * M); // a long run, copied in 1 MiB pieces
    const copies: number[][] = [];
    const { p, pacing } = fakePacing();
    const res = await healReplica({ access: access(src, dst, dirty, copies), nodeId: "c", imageId: "i", mode: "dirty", dirty, sizeBytes: size, bytesPerSec: 4 * M, pacing });
    expect(dst.bytes.equals(src.bytes)).toBe(true);
    expect(dirty.isClean).toBe(true);
    expect(res.copiedBytes).toBe(3 * M + 64 * 1024 * 3);
    expect(copies.every(([, n]) => n! <= M)).toBe(true);
    // 3.19 MiB at 4 MiB/s takes about 0.8 s of (fake) time
    expect(p.now).toBeGreaterThanOrEqual((res.copiedBytes / (4 * M)) * 1000 - 1);
    expect(p.now).toBeLessThan((res.copiedBytes / (4 * M)) * 1000 + 1);
  });

  it("compare mode copies exactly the chunks whose checksums differ", async () => {
    const size = 10 * M + 4096; // a short last chunk
    const src = new FakeTarget("a", size);
    const dst = new FakeTarget("c", size);
    src.bytes = randomBytes(size);
    dst.bytes = Buffer.from(src.bytes);
    dst.bytes[3 * M + 17] = dst.bytes[3 * M + 17]! ^ 1;
    dst.bytes[size - 1] = dst.bytes[size - 1]! ^ 1;
    const dirty = new DirtyMap(size);
    const copies: number[][] = [];
    const progress: number[] = [];
    const { pacing } = fakePacing();
    const res = await healReplica({
      access: access(src, dst, dirty, copies),
      nodeId: "c",
      imageId: "i",
      mode: "compare",
      dirty,
      sizeBytes: size,
      bytesPerSec: 0,
      pacing,
      compareWindowChunks: 4,
      onProgress: (d) => progress.push(d),
    });
    expect(copies).toEqual([[3 * M, M], [10 * M, 4096]]);
    expect(res).toEqual({ copiedBytes: M + 4096, comparedBytes: size });
    expect(dst.bytes.equals(src.bytes)).toBe(true);
    expect(progress).toEqual([0, 4 * M, 8 * M, size]);
  });

  it("stops when aborted, with code aborted", async () => {
    const size = 8 * M;
    const src = new FakeTarget("a", size);
    const dst = new FakeTarget("c", size);
    const dirty = new DirtyMap(size);
    dirty.markAll();
    const ac = new AbortController();
    const copies: number[][] = [];
    const a = access(src, dst, dirty, copies);
    const stopping: HealAccess = { ...a, copyForHeal: async (id, o, n) => (await a.copyForHeal(id, o, n), copies.length === 2 && ac.abort()) as void };
    const { pacing } = fakePacing();
    await expect(
      healReplica({ access: stopping, nodeId: "c", imageId: "i", mode: "dirty", dirty, sizeBytes: size, bytesPerSec: 0, pacing, signal: ac.signal }),
    ).rejects.toMatchObject({ code: "aborted" });
    expect(copies).toHaveLength(2);
    expect(dirty.dirtyBytes).toBe(6 * M);
  });
});
