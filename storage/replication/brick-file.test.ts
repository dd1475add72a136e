// The brick file with O_DIRECT large writes: the block backend contract (with direct writes on
// and with a threshold low enough that the contract's own writes take the direct path), the
// alignment of the pool's slots checked against the kernel, and reads seeing direct writes that
// overlap cached and dirty pages.
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { describeBlockBackendContract } from "../nbd/backend-contract.ts";
import { AlignedPool, type AlignedSlot } from "../memory/aligned-pool.ts";
import { BrickFile } from "./brick-file.ts";

const kib = 1024;
const mib = 1024 * kib;
let dir = "";
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "trivet-brick-file-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describeBlockBackendContract("brick file (direct writes from 128 KiB)", async (sizeBytes) => {
  const backend = await BrickFile.open({ path: join(dir, "image.raw"), sizeBytes, syncIoBytesMax: 64 * kib });
  return { backend, dispose: () => backend.close() };
});

describeBlockBackendContract("brick file (every aligned write direct, 64 KiB slots)", async (sizeBytes) => {
  const backend = await BrickFile.open({ path: join(dir, "image.raw"), sizeBytes, directWriteBytesMin: 4096, pool: new AlignedPool(64 * kib, 2) });
  return { backend, dispose: () => backend.close() };
});

/** Whether this directory's file system takes O_DIRECT at all (tmpfs before Linux 6.6 does not). */
function directSupported(path: string): boolean {
  try {
    fs.closeSync(fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_DIRECT, 0o600));
    return true;
  } catch {
    return false;
  }
}

describe("BrickFile on a real file", () => {
  it("hands out slots the kernel accepts for O_DIRECT, and an unaligned view it refuses", async () => {
    const path = join(dir, "align.raw");
    if (!directSupported(path)) return;
    const pool = new AlignedPool(64 * kib, 3);
    const slots = [pool.acquire(), pool.acquire(), pool.acquire()].map((s) => ("buffer" in s ? s : null));
    const fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_DIRECT);
    try {
      for (const s of slots) {
        expect(s).not.toBeNull();
        expect(fs.writeSync(fd, s!.buffer, 0, 4096, 0)).toBe(4096);
      }
      // The control: the same memory 8 bytes off is refused, so the test above can fail.
      expect(() => fs.writeSync(fd, slots[0]!.buffer, 8, 4096, 0)).toThrow(/EINVAL/);
    } finally {
      fs.closeSync(fd);
    }
    expect(pool.freeSlots).toBe(0);
    const waiting = pool.acquire();
    expect("buffer" in waiting).toBe(false);
    slots[1]!.release();
    const next = await waiting;
    expect(next.buffer.byteOffset).toBe(slots[1]!.buffer.byteOffset);
  });

  it("writes large aligned requests direct, and reads see them over cached and dirty pages", async () => {
    const path = join(dir, "mix.raw");
    if (!directSupported(path)) return;
    const b = await BrickFile.open({ path, sizeBytes: 16 * mib, pool: new AlignedPool(256 * kib, 2) });
    const fresh = randomBytes(2 * mib);
    try {
      expect(b.directWrites).toBe(true);
      const old = randomBytes(2 * mib);
      await b.write(mib, old, { fua: false }); // direct (2 MiB in 256 KiB slots, two at a time)
      expect((await b.read(mib, 2 * mib)).equals(old)).toBe(true); // now cached
      const small = randomBytes(4 * kib);
      await b.write(mib + 8 * kib, small, { fua: false }); // buffered: a dirty page inside the range
      await b.write(mib, fresh, { fua: true }); // direct over cached and dirty pages
      expect((await b.read(mib, 2 * mib)).equals(fresh)).toBe(true);
      expect(b.directWrittenBytes).toBe(4 * mib);
      const odd = randomBytes(512 * kib + 3);
      await b.write(5 * mib + 1, odd, { fua: false }); // unaligned: buffered
      expect((await b.read(5 * mib + 1, odd.length)).equals(odd)).toBe(true);
    } finally {
      await b.close();
    }
    const reopened = await BrickFile.open({ path, directWriteBytesMin: 0 });
    try {
      expect(reopened.directWrites).toBe(false);
      expect((await reopened.read(mib, 2 * mib)).equals(fresh)).toBe(true);
    } finally {
      await reopened.close();
    }
  });

  it("writes data already in the aligned pool from where it is, without taking a slot", async () => {
    const pool = new AlignedPool(64 * kib, 2);
    const b = await BrickFile.open({ path: join(dir, "in-pool.raw"), sizeBytes: 8 * mib, directWriteBytesMin: 4096, pool });
    const held = [pool.tryAcquire(), pool.tryAcquire()];
    try {
      const [a, c] = held as [AlignedSlot, AlignedSlot];
      expect(pool.tryAcquire()).toBeNull();
      randomBytes(64 * kib).copy(a.buffer);
      expect(pool.holds(a.buffer)).toBe(true);
      expect(pool.holds(Buffer.alloc(64 * kib))).toBe(false);
      // Every slot is taken: a write that needed one would wait for ever (and time the test out).
      await b.write(mib, a.buffer, { fua: false });
      expect((await b.read(mib, 64 * kib)).equals(a.buffer)).toBe(true);
      if (b.directWrites) expect(b.directWrittenBytes).toBe(64 * kib);
      c.release();
      const data = randomBytes(256 * kib); // ordinary memory: copied through the free slot, piece by piece
      await b.write(2 * mib, data, { fua: true });
      expect((await b.read(2 * mib, data.length)).equals(data)).toBe(true);
      await b.write(3 * mib + 5, data, { fua: false }); // unaligned: buffered
      expect((await b.read(3 * mib + 5, data.length)).equals(data)).toBe(true);
      if (b.directWrites) expect(b.directWrittenBytes).toBe(320 * kib);
    } finally {
      for (const s of held) s?.release();
      await b.close();
    }
  });

  it("moves small reads off the calling thread while most of them miss the cache, and back when they hit", async () => {
    let clockCalls = 0;
    let stepMs = 0;
    const nowMs = (): number => (clockCalls++) * stepMs; // each timed read takes stepMs
    const b = await BrickFile.open({ path: join(dir, "reads.raw"), sizeBytes: mib, syncIoBytesMax: 64 * kib, nowMs });
    try {
      const data = randomBytes(4 * kib);
      await b.write(8 * kib, data, { fua: false });
      const readMany = async (n: number): Promise<number> => {
        const before = clockCalls;
        for (let i = 0; i < n; i++) expect((await b.read(8 * kib, 4 * kib)).equals(data)).toBe(true);
        return (clockCalls - before) / 2; // two clock reads per calling-thread read
      };
      expect(await readMany(32)).toBe(32); // fast: all on the calling thread
      expect(b.readMissShare).toBe(0);
      stepMs = 1; // every timed read now looks like a disk access
      const slow = await readMany(160);
      expect(b.readMissShare).toBeGreaterThan(0.25);
      expect(slow).toBeLessThan(40); // after a few misses only one read in 16 is timed
      expect(slow).toBeGreaterThan(5);
      stepMs = 0;
      await readMany(400); // the samples see hits again
      expect(b.readMissShare).toBeLessThan(0.25);
      expect(await readMany(32)).toBe(32);
      expect((await b.read(mib - 2 * kib, 2 * kib)).equals(Buffer.alloc(2 * kib))).toBe(true);
      await expect(b.read(mib - 2 * kib, 4 * kib)).rejects.toMatchObject({ code: "out_of_range" });
    } finally {
      await b.close();
    }
    await expect(b.read(0, 4096)).rejects.toMatchObject({ code: "closed" });
  });

  it("refuses writes outside the file and after close", async () => {
    const b = await BrickFile.open({ path: join(dir, "range.raw"), sizeBytes: mib });
    await expect(b.write(mib - 64 * kib, Buffer.alloc(256 * kib), { fua: false })).rejects.toMatchObject({ code: "out_of_range" });
    await b.close();
    await expect(b.write(0, Buffer.alloc(256 * kib), { fua: false })).rejects.toMatchObject({ code: "closed" });
  });
});
