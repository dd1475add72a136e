// `trivet image upload FILE --volume VOL`: puts a local file (an ISO, a raw template) into the
// image library of a volume. The image is created "uploading" (its size the file's, rounded up to
// whole 512-byte sectors), the file is sent in order in chunks of uploadChunkBytesMax with a
// bounded number of retries while the node is unavailable, then FinishImageUpload flushes it on
// every replica and makes it ready. On any failure, or Ctrl-C, the half-uploaded image is deleted
// (and the user told so): a library never keeps an image whose content is not all there.
// The sequence is a function of injected calls, clock and reader, so it is tested without a node.
import path from "node:path";
import type { ApiErrorCode } from "../core/api/server/errors.ts";
import { imageNamePattern, imageSectorBytes } from "../storage/volume/model.ts";

/** One WriteImageContent chunk: the most the server takes (storage/volume/image-service.ts). */
export const uploadChunkBytes = 4 * 1024 * 1024;
/** Tries of one chunk while the node answers `unavailable` (a leader change, a replica dropping out). */
export const writeAttemptsMax = 5;
/** Pause before retry n (1-based) is n times this. */
export const retryDelayMs = 500;

export type LibraryKind = "iso" | "template";

export class UploadError extends Error {
  constructor(readonly code: "upload_input" | "upload_interrupted" | "upload_failed", message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = "UploadError";
  }
}

export interface UploadPlan {
  name: string;
  kind: LibraryKind;
  fileBytes: number;
  /** The file's size rounded up to whole sectors; the tail past the file stays zero. */
  sizeBytes: number;
}

export function roundUpToSector(bytes: number): number {
  return Math.ceil(bytes / imageSectorBytes) * imageSectorBytes;
}

/** The image name, kind and size for a file of `fileBytes` bytes, or an UploadError saying what to change. */
export function planUpload(file: string, fileBytes: number, flags: { name?: string; kind?: string }): UploadPlan {
  const fromFile = flags.name === undefined || flags.name === "";
  const name = fromFile ? path.basename(file).toLowerCase() : flags.name!;
  if (!imageNamePattern.test(name)) {
    const source = fromFile ? ` (from the file name ${JSON.stringify(path.basename(file))}); pass --name NAME` : "";
    throw new UploadError("upload_input", `image name ${JSON.stringify(name)} must be 1 to 128 characters of a-z, 0-9, ".", "_", "-", starting and ending with a letter or digit${source}`);
  }
  const kind = flags.kind === undefined || flags.kind === "" ? (name.endsWith(".iso") ? "iso" : "template") : flags.kind;
  if (kind !== "iso" && kind !== "template") throw new UploadError("upload_input", `--kind must be iso or template (got ${JSON.stringify(kind)})`);
  if (fileBytes === 0) throw new UploadError("upload_input", `${file} is empty; there is nothing to upload`);
  return { name, kind, fileBytes, sizeBytes: roundUpToSector(fileBytes) };
}

/** The calls an upload makes; the CLI binds them to ImageService, tests to fakes. */
export interface UploadDeps {
  write(offset: number, data: Uint8Array): Promise<void>;
  /** Reads up to `length` bytes of the file at `offset`. */
  read(offset: number, length: number): Promise<Uint8Array>;
  sleep(ms: number, signal: AbortSignal): Promise<void>;
  onProgress(doneBytes: number): void;
  signal: AbortSignal;
}

function errorCode(err: unknown): ApiErrorCode | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? (code as ApiErrorCode) : undefined;
}

function interrupted(doneBytes: number, fileBytes: number): UploadError {
  return new UploadError("upload_interrupted", `interrupted after ${doneBytes} of ${fileBytes} bytes`);
}

/** Sends one chunk, again after a pause while the node says `unavailable`, at most writeAttemptsMax times. */
async function writeChunk(d: UploadDeps, offset: number, data: Uint8Array, fileBytes: number): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await d.write(offset, data);
      return;
    } catch (err) {
      if (errorCode(err) !== "unavailable" || attempt >= writeAttemptsMax) {
        const tries = attempt > 1 ? ` (${attempt} tries)` : "";
        throw new UploadError("upload_failed", `writing bytes ${offset}..${offset + data.length} of ${fileBytes}${tries}: ${(err as Error).message}`, { cause: err });
      }
      await d.sleep(attempt * retryDelayMs, d.signal).catch(() => undefined);
      if (d.signal.aborted) throw interrupted(offset, fileBytes);
    }
  }
}

/** Sends the whole file, chunk after chunk, in order. */
export async function sendContent(d: UploadDeps, fileBytes: number): Promise<void> {
  let offset = 0;
  d.onProgress(0);
  while (offset < fileBytes) {
    if (d.signal.aborted) throw interrupted(offset, fileBytes);
    const data = await d.read(offset, Math.min(uploadChunkBytes, fileBytes - offset));
    if (data.length === 0) throw new UploadError("upload_failed", `the file ended at ${offset} bytes, before the ${fileBytes} it had when the upload started`);
    await writeChunk(d, offset, data, fileBytes);
    offset += data.length;
    d.onProgress(offset);
  }
}
