// The payload memory pools: size classes, reuse, the retained-bytes bound, and where payload.ts
// puts a received write (aligned slot for large aligned writes, the buffer pool otherwise).
import { describe, expect, it } from "vitest";
import { AlignedPool, alignedPoolDefaults } from "./aligned-pool.ts";
import { BufferPool, bufferPoolDefaults } from "./buffer-pool.ts";
import { payloadAllocator } from "./payload.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

/** The size of the class-sized buffer a lease is a view of. */
function classBytesOf(buf: Buffer): number {
  return buf.buffer.byteLength;
}

describe("BufferPool", () => {
  it("rounds a lease up to a power-of-two class of at least 4 KiB and hands out exactly the bytes asked", () => {
    const pool = new BufferPool();
    expect(bufferPoolDefaults.classBytesMin).toBe(4 * KiB);
    const cases: [number, number][] = [
      [0, 4 * KiB],
      [1, 4 * KiB],
      [4 * KiB - 1, 4 * KiB],
      [4 * KiB, 4 * KiB],
      [4 * KiB + 1, 8 * KiB],
      [12_345, 16 * KiB],
      [MiB, MiB],
      [MiB + 1, 2 * MiB],
    ];
    for (const [bytes, classBytes] of cases) {
      const lease = pool.lease(bytes);
      expect(lease.buffer.length, `lease of ${bytes}`).toBe(bytes);
      expect(lease.buffer.byteOffset).toBe(0);
      expect(classBytesOf(lease.buffer), `class of ${bytes}`).toBe(classBytes);
      lease.release();
    }
  });

  it("gives a released buffer to the next lease of the same class", () => {
    const pool = new BufferPool();
    const a = pool.lease(5000);
    a.buffer.fill(7);
    const memory = a.buffer.buffer;
    a.release();
    expect(pool.retainedBytes).toBe(8 * KiB);
    const b = pool.lease(6000);
    expect(b.buffer.buffer).toBe(memory);
    expect(b.buffer.length).toBe(6000);
    expect(pool.reused).toBe(1);
    expect(pool.allocated).toBe(1);
    expect(pool.retainedBytes).toBe(0);
    // Another class does not take it.
    const c = pool.lease(3000);
    expect(c.buffer.buffer).not.toBe(memory);
    expect(pool.allocated).toBe(2);
  });

  it("does not hand the same buffer to two holders while both hold it", () => {
    const pool = new BufferPool();
    const a = pool.lease(100);
    const b = pool.lease(100);
    expect(b.buffer.buffer).not.toBe(a.buffer.buffer);
    expect(pool.allocated).toBe(2);
    expect(pool.reused).toBe(0);
  });

  it("ignores a second release of the same lease", () => {
    const pool = new BufferPool();
    const a = pool.lease(100);
    a.release();
    a.release();
    expect(pool.retainedBytes).toBe(4 * KiB);
    const b = pool.lease(100);
    const c = pool.lease(100);
    // Were the buffer listed twice, both would share it.
    expect(c.buffer.buffer).not.toBe(b.buffer.buffer);
    expect(pool.reused).toBe(1);
    expect(pool.allocated).toBe(2);
    // Releasing the stale lease again, now that b holds its memory, must not free it under b.
    a.release();
    expect(pool.retainedBytes).toBe(0);
    expect(pool.lease(100).buffer.buffer).not.toBe(b.buffer.buffer);
  });

  it("keeps at most retainedBytesMax of free buffers", () => {
    const pool = new BufferPool({ retainedBytesMax: 16 * KiB });
    const leases = [pool.lease(8 * KiB), pool.lease(8 * KiB), pool.lease(8 * KiB)];
    for (const l of leases) l.release();
    expect(pool.retainedBytes).toBe(16 * KiB);
    const again = [pool.lease(8 * KiB), pool.lease(8 * KiB), pool.lease(8 * KiB)];
    expect(pool.reused).toBe(2);
    expect(pool.allocated).toBe(4);
    const kept = new Set(leases.slice(0, 2).map((l) => l.buffer.buffer));
    expect(kept.has(again[0]!.buffer.buffer)).toBe(true);
    expect(kept.has(again[1]!.buffer.buffer)).toBe(true);
    expect(kept.has(again[2]!.buffer.buffer)).toBe(false);
  });

  it("counts the bound over all classes together", () => {
    const pool = new BufferPool({ retainedBytesMax: 12 * KiB });
    const big = pool.lease(8 * KiB);
    const small = pool.lease(4 * KiB);
    const extra = pool.lease(4 * KiB);
    big.release();
    small.release();
    extra.release();
    expect(pool.retainedBytes).toBe(12 * KiB);
  });

  it("allocates and drops leases larger than classBytesMax", () => {
    const pool = new BufferPool({ classBytesMax: 64 * KiB });
    const exact = pool.lease(64 * KiB);
    expect(classBytesOf(exact.buffer)).toBe(64 * KiB);
    exact.release();
    expect(pool.retainedBytes).toBe(64 * KiB);
    const large = pool.lease(64 * KiB + 1);
    expect(large.buffer.length).toBe(64 * KiB + 1);
    expect(classBytesOf(large.buffer)).toBe(64 * KiB + 1);
    const memory = large.buffer.buffer;
    large.release();
    expect(pool.retainedBytes).toBe(64 * KiB);
    const next = pool.lease(64 * KiB + 1);
    expect(next.buffer.buffer).not.toBe(memory);
    expect(pool.allocated).toBe(3);
    expect(pool.reused).toBe(0);
  });

  it("refuses invalid lease sizes and class bounds with a RangeError", () => {
    const pool = new BufferPool();
    for (const bytes of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => pool.lease(bytes), `lease of ${bytes}`).toThrow(RangeError);
    }
    expect(pool.allocated).toBe(0);
    expect(() => new BufferPool({ classBytesMin: 3000 })).toThrow(RangeError);
    expect(() => new BufferPool({ classBytesMax: 3 * MiB })).toThrow(RangeError);
    expect(() => new BufferPool({ classBytesMin: 0 })).toThrow(RangeError);
    expect(() => new BufferPool({ classBytesMin: 64 * KiB, classBytesMax: 4 * KiB })).toThrow(RangeError);
  });
});

describe("payloadAllocator", () => {
  const { alignBytes, directBytesMin } = alignedPoolDefaults;

  function setup(slotBytes = MiB, slots = 2): { aligned: AlignedPool; pool: BufferPool; alloc: ReturnType<typeof payloadAllocator> } {
    const aligned = new AlignedPool(slotBytes, slots);
    const pool = new BufferPool();
    return { aligned, pool, alloc: payloadAllocator(pool, aligned) };
  }

  it("puts a 1 MiB write at an aligned offset in an aligned slot", () => {
    const { aligned, pool, alloc } = setup();
    const lease = alloc(MiB, 7 * MiB);
    expect(lease.buffer.length).toBe(MiB);
    expect(aligned.holds(lease.buffer)).toBe(true);
    expect(lease.buffer.byteOffset % alignBytes).toBe(0);
    expect(aligned.freeSlots).toBe(1);
    expect(pool.allocated + pool.reused).toBe(0);
    lease.release();
    expect(aligned.freeSlots).toBe(2);
  });

  it("takes a slot from directBytesMin up, and only for whole aligned blocks", () => {
    const { aligned, pool, alloc } = setup();
    const atMin = alloc(directBytesMin, alignBytes);
    expect(aligned.holds(atMin.buffer)).toBe(true);
    atMin.release();
    const fallbacks: [number, number][] = [
      [directBytesMin - alignBytes, 0], // too small to be worth O_DIRECT
      [MiB, 512], // offset not aligned
      [MiB - 512, 0], // length not a whole number of blocks
      [2 * MiB, 0], // larger than a slot
      [64 * KiB, 0],
    ];
    for (const [bytes, offset] of fallbacks) {
      const lease = alloc(bytes, offset);
      expect(lease.buffer.length).toBe(bytes);
      expect(aligned.holds(lease.buffer), `${bytes} bytes at ${offset}`).toBe(false);
      lease.release();
    }
    expect(pool.allocated + pool.reused).toBe(fallbacks.length);
    expect(aligned.freeSlots).toBe(2);
  });

  it("falls back to the buffer pool while every slot is taken, and uses slots again once one is released", () => {
    const { aligned, pool, alloc } = setup();
    const first = alloc(MiB, 0);
    const second = alloc(MiB, MiB);
    expect(aligned.holds(first.buffer) && aligned.holds(second.buffer)).toBe(true);
    expect(first.buffer.byteOffset).not.toBe(second.buffer.byteOffset);
    const third = alloc(MiB, 2 * MiB);
    expect(aligned.holds(third.buffer)).toBe(false);
    expect(pool.allocated).toBe(1);
    second.release();
    second.release(); // a second release must not free the slot twice
    const fourth = alloc(MiB, 3 * MiB);
    expect(aligned.holds(fourth.buffer)).toBe(true);
    expect(fourth.buffer.byteOffset).toBe(second.buffer.byteOffset);
    expect(aligned.freeSlots).toBe(0);
    expect(aligned.holds(alloc(MiB, 4 * MiB).buffer)).toBe(false);
  });

  it("never uses a pool whose slots are smaller than directBytesMin", () => {
    // A 64 KiB slot cannot hold a write of directBytesMin (128 KiB) or more, so nothing qualifies.
    const { aligned, pool, alloc } = setup(64 * KiB, 2);
    for (const bytes of [64 * KiB, directBytesMin, MiB]) {
      expect(aligned.holds(alloc(bytes, 0).buffer), `${bytes} bytes`).toBe(false);
    }
    expect(pool.allocated).toBe(3);
    expect(aligned.freeSlots).toBe(2);
  });
});
