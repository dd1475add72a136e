// The upload sequence without a node: the image name, kind and sector-rounded size planned from
// the file (and refused with a message that says what to pass); the content sent in order in
// uploadChunkBytes chunks that cover the file exactly; `unavailable` retried a bounded number of
// times with growing pauses, other errors not retried; an abort stops before the next chunk.
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ApiError } from "../core/api/server/errors.ts";
import { planUpload, retryDelayMs, roundUpToSector, sendContent, uploadChunkBytes, UploadError, writeAttemptsMax, type UploadDeps } from "./image-upload.ts";

const MiB = 1024 * 1024;

function fakeNode(file: Uint8Array, failures: Array<ApiError | undefined> = []) {
  const image = new Uint8Array(roundUpToSector(file.length));
  const writes: Array<[number, number]> = [];
  const slept: number[] = [];
  const progress: number[] = [];
  const ac = new AbortController();
  const deps: UploadDeps = {
    async write(offset, data) {
      const fail = failures.shift();
      if (fail) throw fail;
      writes.push([offset, data.length]);
      image.set(data, offset);
    },
    read: async (offset, length) => file.subarray(offset, offset + length),
    sleep: async (ms) => void slept.push(ms),
    onProgress: (n) => progress.push(n),
    signal: ac.signal,
  };
  return { deps, image, writes, slept, progress, ac };
}

async function failure(p: Promise<unknown>): Promise<UploadError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(UploadError);
  return err as UploadError;
}

describe("planUpload", () => {
  it("names the image after the file, lower-cased, picks the kind, and rounds the size up to sectors", () => {
    expect(planUpload("/tmp/Debian-12.ISO", 5 * MiB + 1, {})).toEqual({ name: "debian-12.iso", kind: "iso", fileBytes: 5 * MiB + 1, sizeBytes: 5 * MiB + 512 });
    expect(planUpload("base.raw", 1024, {})).toMatchObject({ name: "base.raw", kind: "template", sizeBytes: 1024 });
    expect(planUpload("x.bin", 1, { name: "tpl1", kind: "iso" })).toMatchObject({ name: "tpl1", kind: "iso", sizeBytes: 512 });
    expect(roundUpToSector(512)).toBe(512);
    expect(roundUpToSector(513)).toBe(1024);
  });

  it("refuses a name that breaks the rule, saying where it came from and what to pass", () => {
    expect(() => planUpload("/x/My Disk.iso", 10, {})).toThrow(/image name "my disk.iso" must be 1 to 128 characters .* \(from the file name "My Disk.iso"\); pass --name NAME/);
    expect(() => planUpload("/x/a.iso", 10, { name: "-bad" })).toThrow(/image name "-bad" must be/);
    expect(() => planUpload("/x/a.iso", 10, { name: "-bad" })).not.toThrow(/--name/);
    expect(() => planUpload("/x/a.iso", 10, { kind: "disk" })).toThrow(/--kind must be iso or template \(got "disk"\)/);
    expect(() => planUpload("/x/a.iso", 0, {})).toThrow(/is empty/);
  });
});

describe("sendContent", () => {
  it("sends the file in order, in chunks of uploadChunkBytes, and reports progress", async () => {
    const file = randomBytes(2 * uploadChunkBytes + 1000);
    const n = fakeNode(file);
    await sendContent(n.deps, file.length);
    expect(n.writes).toEqual([[0, uploadChunkBytes], [uploadChunkBytes, uploadChunkBytes], [2 * uploadChunkBytes, 1000]]);
    expect(Buffer.from(n.image.subarray(0, file.length)).equals(file)).toBe(true);
    expect(n.image.subarray(file.length).every((b) => b === 0)).toBe(true);
    expect(n.progress).toEqual([0, uploadChunkBytes, 2 * uploadChunkBytes, file.length]);
  });

  it("retries a chunk while the node is unavailable, pausing longer each time", async () => {
    const file = randomBytes(3000);
    const unavailable = () => new ApiError("unavailable", "no leader");
    const n = fakeNode(file, [unavailable(), unavailable()]);
    await sendContent(n.deps, file.length);
    expect(n.slept).toEqual([retryDelayMs, 2 * retryDelayMs]);
    expect(Buffer.from(n.image.subarray(0, 3000)).equals(file)).toBe(true);
  });

  it("gives up after writeAttemptsMax tries, and does not retry other errors", async () => {
    const file = randomBytes(3000);
    const n = fakeNode(file, Array.from({ length: writeAttemptsMax + 1 }, () => new ApiError("unavailable", "node down")));
    const err = await failure(sendContent(n.deps, file.length));
    expect(err.code).toBe("upload_failed");
    expect(err.message).toBe(`writing bytes 0..3000 of 3000 (${writeAttemptsMax} tries): node down`);
    expect(n.slept).toHaveLength(writeAttemptsMax - 1);
    const m = fakeNode(file, [new ApiError("failed_precondition", "image is ready, not uploading")]);
    expect((await failure(sendContent(m.deps, file.length))).message).toMatch(/^writing bytes 0\.\.3000 of 3000: image is ready/);
    expect(m.slept).toEqual([]);
  });

  it("stops before the next chunk once aborted", async () => {
    const file = randomBytes(3 * uploadChunkBytes);
    const n = fakeNode(file);
    n.deps.onProgress = (done) => {
      if (done === uploadChunkBytes) n.ac.abort();
    };
    const err = await failure(sendContent(n.deps, file.length));
    expect(err.code).toBe("upload_interrupted");
    expect(err.message).toBe(`interrupted after ${uploadChunkBytes} of ${file.length} bytes`);
    expect(n.writes).toEqual([[0, uploadChunkBytes]]);
  });

  it("fails when the file shrinks under it", async () => {
    const file = randomBytes(1000);
    const n = fakeNode(file);
    expect((await failure(sendContent(n.deps, 5000))).message).toMatch(/the file ended at 1000 bytes, before the 5000/);
  });
});
