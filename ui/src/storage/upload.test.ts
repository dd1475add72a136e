// The upload sequence against a fake ImageService that keeps the image's bytes: the file arrives
// whole and in order in chunks of at most 512 KiB, progress reaches the file size, the image is
// sized in whole sectors and made ready; a cancel or a failure leaves no image behind; an image
// that already existed is never deleted; a node that is briefly unavailable is retried.
import { Buffer } from "node:buffer";
import { describe, expect, it } from "vitest";
import { ApiCallError, type ApiClient } from "../api/client.ts";
import type { UploadDeps, UploadProgress, UploadSource } from "./upload.ts";
import { chunkRetryWindowMs, uploadChunkBytes, uploadImage, UploadCancelled } from "./upload.ts";

interface FakeImage { size: number; state: string; bytes: Uint8Array; held: boolean }

function fakeServer() {
  const images = new Map<string, FakeImage>();
  const calls: string[] = [];
  let clockMs = 0;
  const failures: Array<{ method: string; err: ApiCallError }> = [];
  const handle = (method: string, req: Record<string, unknown>): unknown => {
    const key = `${String(req.volume)}/${String(req.name)}`;
    const img = images.get(key);
    switch (method) {
      case "ImageService/CreateImage": {
        if (img) throw new ApiCallError("already_exists", "exists", 409, "name");
        const size = Number(req.sizeBytes);
        images.set(key, { size, state: req.upload ? "uploading" : "ready", bytes: new Uint8Array(size), held: false });
        return { image: { name: req.name } };
      }
      case "ImageService/WriteImageContent": {
        if (!img || img.state !== "uploading") throw new ApiCallError("failed_precondition", "not uploading", 400);
        const data = Buffer.from(String(req.data), "base64");
        if (data.length > uploadChunkBytes) throw new ApiCallError("invalid_argument", "chunk too big", 400, "data");
        img.bytes.set(data, Number(req.offset));
        img.held = true;
        return { nextOffset: String(Number(req.offset) + data.length) };
      }
      case "ImageService/FinishImageUpload":
        if (!img || img.state !== "uploading") throw new ApiCallError("failed_precondition", "not uploading", 400);
        img.state = "ready";
        img.held = false;
        return { image: { name: req.name, state: "ready", sizeBytes: String(img.size) } };
      case "ImageService/DeleteImage":
        if (!img) throw new ApiCallError("not_found", "no image", 404);
        if (img.held) throw new ApiCallError("failed_precondition", "open for writing", 400);
        images.delete(key);
        return {};
      default:
        throw new Error(`unexpected ${method}`);
    }
  };
  const call = (async (method: string, req: Record<string, unknown>) => {
    calls.push(method);
    const i = failures.findIndex((f) => f.method === method);
    if (i >= 0) throw failures.splice(i, 1)[0]!.err;
    return handle(method, req);
  }) as unknown as ApiClient["call"];
  const deps: UploadDeps = {
    call,
    sleep: async (ms) => { clockMs += ms; },
    nowMs: () => clockMs,
    base64: (b) => Buffer.from(b).toString("base64"),
  };
  return { images, calls, deps, failNext: (method: string, err: ApiCallError) => failures.push({ method, err }) };
}

function fileOf(bytes: Uint8Array, name = "test.iso"): UploadSource {
  return { name, size: bytes.length, slice: (s, e) => ({ arrayBuffer: async () => bytes.slice(s, e).buffer }) };
}

function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const request = (file: UploadSource, progress: UploadProgress[] = [], signal = new AbortController().signal) => ({
  volume: "vol1", name: "test.iso", kind: "iso" as const, file, signal, onProgress: (p: UploadProgress) => progress.push(p),
});

describe("uploadImage", () => {
  it("sends the file in order, in chunks of at most 512 KiB, and makes the image ready", async () => {
    const s = fakeServer();
    const bytes = randomBytes(2 * 1024 * 1024 + 700, 7);
    const progress: UploadProgress[] = [];
    const image = await uploadImage(s.deps, request(fileOf(bytes), progress));
    expect(image?.state).toBe("ready");
    const stored = s.images.get("vol1/test.iso")!;
    // Rounded up to whole sectors; the tail past the file stays zero.
    expect(stored.size).toBe(2 * 1024 * 1024 + 1024);
    expect(Buffer.from(stored.bytes.subarray(0, bytes.length)).equals(Buffer.from(bytes))).toBe(true);
    expect(stored.bytes.subarray(bytes.length).every((b) => b === 0)).toBe(true);
    expect(s.calls.filter((c) => c === "ImageService/WriteImageContent")).toHaveLength(5);
    expect(progress.map((p) => p.sentBytes)).toEqual([0, 1, 2, 3, 4].map((i) => i * uploadChunkBytes).concat(bytes.length));
    expect(progress.every((p) => p.totalBytes === bytes.length)).toBe(true);
    expect(s.calls.at(-1)).toBe("ImageService/FinishImageUpload");
  });

  it("deletes the half-uploaded image when cancelled", async () => {
    const s = fakeServer();
    const ctl = new AbortController();
    const progress: UploadProgress[] = [];
    const r = { ...request(fileOf(randomBytes(3 * uploadChunkBytes, 3)), progress, ctl.signal), onProgress: (p: UploadProgress) => { progress.push(p); if (p.sentBytes >= uploadChunkBytes) ctl.abort(); } };
    const err = await uploadImage(s.deps, r).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UploadCancelled);
    expect((err as UploadCancelled).cleanup).toMatch(/was deleted/);
    expect(s.images.size).toBe(0);
    expect(s.calls.filter((c) => c === "ImageService/WriteImageContent")).toHaveLength(1);
  });

  it("retries a chunk while the node is briefly unavailable", async () => {
    const s = fakeServer();
    s.failNext("ImageService/WriteImageContent", new ApiCallError("unavailable", "no copy yet", 503));
    s.failNext("ImageService/WriteImageContent", new ApiCallError("unavailable", "no copy yet", 503));
    const bytes = randomBytes(1000, 1);
    await uploadImage(s.deps, request(fileOf(bytes)));
    expect(Buffer.from(s.images.get("vol1/test.iso")!.bytes.subarray(0, 1000)).equals(Buffer.from(bytes))).toBe(true);
  });

  it("gives up after the retry window, deletes the image and says so", async () => {
    const s = fakeServer();
    for (let i = 0; i < chunkRetryWindowMs / 100; i++) s.failNext("ImageService/WriteImageContent", new ApiCallError("unavailable", "brick gone", 503));
    const err = await uploadImage(s.deps, request(fileOf(randomBytes(1000, 2)))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiCallError);
    expect((err as ApiCallError).message).toMatch(/brick gone.*was deleted/);
    expect(s.images.size).toBe(0);
  });

  it("never deletes an image that existed before (its name was taken)", async () => {
    const s = fakeServer();
    await s.deps.call("ImageService/CreateImage", { volume: "vol1", name: "test.iso", sizeBytes: "512" });
    const err = await uploadImage(s.deps, request(fileOf(randomBytes(10, 4)))).catch((e: unknown) => e);
    expect((err as ApiCallError).field).toBe("name");
    expect(s.images.has("vol1/test.iso")).toBe(true);
    expect(s.calls).not.toContain("ImageService/DeleteImage");
  });
});
