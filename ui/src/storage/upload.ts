// Uploading a file into a new image of the ISO library: CreateImage with upload set (state
// "uploading", size rounded up to whole sectors), WriteImageContent chunk after chunk in order
// (base64 in JSON; HTTP bodies are bounded to 1 MiB, so chunks of 512 KiB), FinishImageUpload to
// make it "ready". Cancelled or failed half-way, the image is finished (which lets go of the
// node's hold on it) and deleted, so no half-written image stays in the library. The API call,
// the wait and the base64 encoding are injected: the sequence is tested without a browser.
import { ApiCallError, type ApiClient } from "../api/client.ts";
import type { Image, ImageKind } from "../api/types.ts";
import { imageSizeFor } from "./storage-model.ts";

/** Bytes per WriteImageContent over HTTP/JSON (the API's limit there is 512 KiB). */
export const uploadChunkBytes = 512 * 1024;
/**
 * How long one chunk is retried while the node answers "unavailable" (its storage agent makes the
 * image's file shortly after CreateImage; a replica may be reconnecting).
 */
export const chunkRetryWindowMs = 15_000;
export const chunkRetryDelayMs = 500;
/** How long deleting a cancelled upload is retried while the node still holds the image open. */
export const cleanupRetryWindowMs = 10_000;

export interface UploadSource {
  name: string;
  size: number;
  slice(start: number, end: number): { arrayBuffer(): Promise<ArrayBuffer> };
}

export interface UploadProgress { sentBytes: number; totalBytes: number }

export interface UploadDeps {
  call: ApiClient["call"];
  sleep(ms: number): Promise<void>;
  nowMs(): number;
  base64(bytes: Uint8Array): string;
}

export interface UploadRequest {
  volume: string;
  name: string;
  kind: ImageKind;
  file: UploadSource;
  signal: AbortSignal;
  onProgress(p: UploadProgress): void;
  chunkBytes?: number;
}

/** The upload was cancelled by the user; `cleanup` says what became of the half-written image. */
export class UploadCancelled extends Error {
  constructor(readonly cleanup: string) {
    super(`upload cancelled; ${cleanup}`);
    this.name = "UploadCancelled";
  }
}

/** Node still starting the image's file, a replica reconnecting: worth another try. */
const transient = ["unavailable"];
/** Deleting right after the upload let go: the node may still hold the image open a moment. */
const stillHeld = ["unavailable", "failed_precondition"];

/** Calls `fn` until it succeeds, fails with a code not in `retryOn`, or `windowMs` has passed. */
async function retrying<T>(deps: UploadDeps, windowMs: number, retryOn: readonly string[], signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
  const deadline = deps.nowMs() + windowMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      const again = err instanceof ApiCallError && retryOn.includes(err.code);
      if (!again || deps.nowMs() + chunkRetryDelayMs > deadline || signal?.aborted) throw err;
      await deps.sleep(chunkRetryDelayMs);
    }
  }
}

/** Ends the hold the upload has on the image, then deletes it; says what happened, never throws. */
async function discard(deps: UploadDeps, volume: string, name: string): Promise<string> {
  const ref = { volume, name };
  await deps.call("ImageService/FinishImageUpload", ref).catch(() => undefined);
  try {
    await retrying(deps, cleanupRetryWindowMs, stillHeld, undefined, () => deps.call("ImageService/DeleteImage", ref));
    return `the partly uploaded image ${name} was deleted`;
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return `the partly uploaded image ${name} could not be deleted (${why}); delete it from the Images tab`;
  }
}

async function sendChunks(deps: UploadDeps, r: UploadRequest): Promise<void> {
  const chunk = r.chunkBytes ?? uploadChunkBytes;
  const total = r.file.size;
  let offset = 0;
  r.onProgress({ sentBytes: 0, totalBytes: total });
  while (offset < total) {
    if (r.signal.aborted) return;
    const end = Math.min(total, offset + chunk);
    const data = deps.base64(new Uint8Array(await r.file.slice(offset, end).arrayBuffer()));
    const at = offset;
    const res = await retrying(deps, chunkRetryWindowMs, transient, r.signal, () =>
      deps.call("ImageService/WriteImageContent", { volume: r.volume, name: r.name, offset: String(at), data }));
    const next = Number(res.nextOffset);
    // The server says where the next chunk starts: anything else than the end of this one is a bug.
    if (next !== end) throw new ApiCallError("internal", `uploading ${r.name}: the node acknowledged up to byte ${next}, expected ${end}`, 0);
    offset = end;
    r.onProgress({ sentBytes: offset, totalBytes: total });
  }
}

/**
 * Creates the image, sends the file and finishes the upload; returns the ready image. Throws
 * UploadCancelled when `signal` aborts, or the error that stopped it (the image deleted then).
 */
export async function uploadImage(deps: UploadDeps, r: UploadRequest): Promise<Image | undefined> {
  await deps.call("ImageService/CreateImage", {
    volume: r.volume, name: r.name, sizeBytes: String(imageSizeFor(r.file.size)), kind: r.kind, format: "raw", upload: true,
  });
  try {
    await sendChunks(deps, r);
    if (r.signal.aborted) throw new UploadCancelled(await discard(deps, r.volume, r.name));
    const done = await retrying(deps, chunkRetryWindowMs, transient, r.signal, () => deps.call("ImageService/FinishImageUpload", { volume: r.volume, name: r.name }));
    return done.image;
  } catch (err) {
    if (err instanceof UploadCancelled) throw err;
    const cleanup = await discard(deps, r.volume, r.name);
    if (r.signal.aborted) throw new UploadCancelled(cleanup);
    const msg = err instanceof Error ? err.message : String(err);
    throw new ApiCallError(err instanceof ApiCallError ? err.code : "internal", `${msg} (${cleanup})`, err instanceof ApiCallError ? err.status : 0);
  }
}

/** Base64 of bytes in the browser (btoa takes a binary string; built in slices to bound the argument list). */
export function browserBase64(bytes: Uint8Array): string {
  const sliceBytes = 0x8000;
  let s = "";
  for (let i = 0; i < bytes.length; i += sliceBytes) s += String.fromCharCode(...bytes.subarray(i, i + sliceBytes));
  return btoa(s);
}
