// The contract every BlockBackend passes (file brick, memory, later the replicated image): one
// shared vitest suite, run by each implementation's test file with its own factory.
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { BlockBackend } from "./backend.ts";

export interface ContractSubject {
  backend: BlockBackend;
  dispose(): Promise<void>;
}

export function describeBlockBackendContract(name: string, open: (sizeBytes: number) => Promise<ContractSubject>): void {
  const sizeBytes = 8 * 1024 * 1024;
  const withBackend = async (fn: (b: BlockBackend) => Promise<void>): Promise<void> => {
    const s = await open(sizeBytes);
    try {
      await fn(s.backend);
    } finally {
      await s.dispose();
    }
  };

  describe(`BlockBackend contract: ${name}`, () => {
    it("reports its size and reads zeroes from a fresh image", () =>
      withBackend(async (b) => {
        expect(b.sizeBytes).toBe(sizeBytes);
        expect((await b.read(sizeBytes - 4096, 4096)).equals(Buffer.alloc(4096))).toBe(true);
      }));

    it("reads back what was written, at unaligned offsets and across writes", () =>
      withBackend(async (b) => {
        const a = randomBytes(10_000);
        const c = randomBytes(3_000);
        await b.write(12_345, a, { fua: false });
        await b.write(15_000, c, { fua: true });
        const expected = Buffer.concat([a.subarray(0, 15_000 - 12_345), c, a.subarray(15_000 - 12_345 + 3_000)]);
        expect((await b.read(12_345, 10_000)).equals(expected)).toBe(true);
        await b.flush();
      }));

    it("zeroes a range with and without holes allowed, leaving neighbours intact", () =>
      withBackend(async (b) => {
        const data = randomBytes(3 * 1024 * 1024);
        await b.write(0, data, { fua: false });
        await b.writeZeroes(4096, 2 * 1024 * 1024, { fua: false, noHole: false });
        await b.writeZeroes(100, 50, { fua: true, noHole: true });
        const got = await b.read(0, data.length);
        const expected = Buffer.from(data);
        expected.fill(0, 4096, 4096 + 2 * 1024 * 1024);
        expected.fill(0, 100, 150);
        expect(got.equals(expected)).toBe(true);
      }));

    it("accepts trims and keeps data outside the trimmed range", () =>
      withBackend(async (b) => {
        const data = randomBytes(4096);
        await b.write(2 * 1024 * 1024 + 4096, data, { fua: false });
        await b.trim(0, 2 * 1024 * 1024);
        expect((await b.read(2 * 1024 * 1024 + 4096, 4096)).equals(data)).toBe(true);
      }));

    it("rejects ranges beyond the end with a typed error", () =>
      withBackend(async (b) => {
        await expect(b.read(sizeBytes - 10, 20)).rejects.toMatchObject({ code: "out_of_range" });
        await expect(b.write(sizeBytes, Buffer.alloc(1), { fua: false })).rejects.toMatchObject({ code: "out_of_range" });
        await expect(b.writeZeroes(-1, 2, { fua: false, noHole: false })).rejects.toMatchObject({ code: "out_of_range" });
      }));

    it("serves many concurrent writes and reads consistently", () =>
      withBackend(async (b) => {
        const blocks = Array.from({ length: 64 }, () => randomBytes(4096));
        await Promise.all(blocks.map((blk, i) => b.write(i * 8192, blk, { fua: false })));
        const back = await Promise.all(blocks.map((_, i) => b.read(i * 8192, 4096)));
        back.forEach((got, i) => expect(got.equals(blocks[i] ?? Buffer.alloc(0))).toBe(true));
      }));
  });
}
