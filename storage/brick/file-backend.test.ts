// The file brick backend: the shared contract, plus what only a real file shows (sparseness,
// hole punching, the zero-write fallback, durability calls).
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { describeBlockBackendContract } from "../nbd/backend-contract.ts";
import { FileBackend } from "./file-backend.ts";

let dir = "";
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "trivet-file-backend-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describeBlockBackendContract("file", async (sizeBytes) => {
  const backend = await FileBackend.open({ path: join(dir, "image.raw"), sizeBytes });
  return { backend, dispose: () => backend.close() };
});

describeBlockBackendContract("file without hole punching", async (sizeBytes) => {
  const backend = await FileBackend.open({ path: join(dir, "image.raw"), sizeBytes, punchHole: null });
  return { backend, dispose: () => backend.close() };
});

describeBlockBackendContract("file with small I/O on the calling thread", async (sizeBytes) => {
  const backend = await FileBackend.open({ path: join(dir, "image.raw"), sizeBytes, syncIoBytesMax: 64 * 1024 });
  return { backend, dispose: () => backend.close() };
});

describe("FileBackend on a real file", () => {
  const mib = 1024 * 1024;

  it("creates a sparse file and reopens it with the size it has", async () => {
    const path = join(dir, "sparse.raw");
    const b = await FileBackend.open({ path, sizeBytes: 256 * mib });
    await b.write(100 * mib, randomBytes(4096), { fua: true });
    await b.close();
    const st = await stat(path);
    expect(st.size).toBe(256 * mib);
    expect(st.blocks * 512).toBeLessThan(mib);
    const again = await FileBackend.open({ path });
    expect(again.sizeBytes).toBe(256 * mib);
    await again.close();
  });

  it("punches a hole for a large zero range so the space is given back", async () => {
    const path = join(dir, "holes.raw");
    const b = await FileBackend.open({ path, sizeBytes: 16 * mib });
    await b.write(0, randomBytes(8 * mib), { fua: true });
    const before = (await stat(path)).blocks * 512;
    await b.writeZeroes(0, 8 * mib, { fua: true, noHole: false });
    const after = (await stat(path)).blocks * 512;
    expect(before).toBeGreaterThanOrEqual(8 * mib);
    expect(after).toBeLessThan(mib);
    expect((await b.read(0, 8 * mib)).equals(Buffer.alloc(8 * mib))).toBe(true);
    await b.close();
  });

  it("keeps the range allocated when the client asks for no hole", async () => {
    const path = join(dir, "nohole.raw");
    let punches = 0;
    const b = await FileBackend.open({ path, sizeBytes: 16 * mib, punchHole: () => Promise.resolve(void punches++) });
    await b.write(0, randomBytes(4 * mib), { fua: false });
    await b.writeZeroes(0, 4 * mib, { fua: false, noHole: true });
    expect(punches).toBe(0);
    expect((await stat(path)).blocks * 512).toBeGreaterThanOrEqual(4 * mib);
    expect((await b.read(0, 4 * mib)).equals(Buffer.alloc(4 * mib))).toBe(true);
    await b.close();
  });

  it("falls back to writing zeroes when punching fails, and stops trying", async () => {
    let attempts = 0;
    const b = await FileBackend.open({
      path: join(dir, "fallback.raw"),
      sizeBytes: 16 * mib,
      punchHole: () => Promise.reject(new Error(`unsupported ${++attempts}`)),
    });
    await b.write(0, randomBytes(4 * mib), { fua: false });
    await b.writeZeroes(0, 2 * mib, { fua: false, noHole: false });
    await b.writeZeroes(2 * mib, 2 * mib, { fua: false, noHole: false });
    expect(attempts).toBe(1);
    expect((await b.read(0, 4 * mib)).equals(Buffer.alloc(4 * mib))).toBe(true);
    await b.close();
  });

  it("grows an existing file on request but refuses to shrink it", async () => {
    const path = join(dir, "grow.raw");
    await (await FileBackend.open({ path, sizeBytes: mib })).close();
    const grown = await FileBackend.open({ path, sizeBytes: 2 * mib });
    expect(grown.sizeBytes).toBe(2 * mib);
    await grown.close();
    await expect(FileBackend.open({ path, sizeBytes: mib })).rejects.toMatchObject({ code: "invalid_argument" });
    expect((await stat(path)).size).toBe(2 * mib);
  });

  it("refuses I/O after close with a typed error", async () => {
    const b = await FileBackend.open({ path: join(dir, "closed.raw"), sizeBytes: mib });
    await b.close();
    await expect(b.read(0, 1)).rejects.toMatchObject({ code: "closed" });
    await expect(b.flush()).rejects.toMatchObject({ code: "closed" });
  });
});
