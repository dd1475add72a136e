// ImageService: create, list, inspect, grow, delete and verify the images of a volume. Images are
// named by volume and name. Create, resize and delete change the replicated record (each node's
// storage agent makes the sparse files follow); verify asks the replication layer, injected as
// `verifyImage`, to compare per-chunk checksums of the in-sync replicas. Uploads (the ISO and
// template library) write content through the injected `content`; deleting an image still
// uploading ends the upload's hold on it first (what the CLI does when an upload fails).
import { randomUUID } from "node:crypto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ImageService, type CreateImageRequest, type ImageSchema, type ResizeImageRequest, type WriteImageContentRequest } from "../../core/api/gen/trivet/v1/storage_pb.ts";
import { ApiError, checkResult } from "../../core/api/server/errors.ts";
import { defineService, type HandlerContext, type RegisteredService } from "../../core/api/server/service.ts";
import { check, invalid, matches } from "../../core/api/server/validation.ts";
import { listVms, listVmStatus } from "../../core/vm/vm-queries.ts";
import type { VmRecord, VmStatusRecord } from "../../core/vm/vm-model.ts";
import { diskImageUsers, imageUsers } from "../../core/vm/vm-volumes.ts";
import { imageFormats, imageKinds, imageNamePattern, imageSizeProblem, type ImageRecord } from "./model.ts";
import { findVolume, nodeNamesOf, storagePermissions, storageSnapshot, volumeNameRule, type StorageSnapshot } from "./service-common.ts";

export interface VerifyImageResult {
  chunkBytes: number;
  replicas: Array<{ nodeId: number; ok: boolean; error: string }>;
  /** Chunks whose checksums differ, by byte offset, with the nodes that differ. */
  mismatches: Array<{ offset: bigint | number; nodes: number[] }>;
}
export type VerifyImageFn = (imageId: string) => Promise<VerifyImageResult>;

/** Where uploaded content goes: the node's replicated image (storage/node), injected by the daemon. */
export interface ImageContent {
  write(imageId: string, offset: number, data: Uint8Array): Promise<void>;
  /** Flushes the content on every in-sync replica and ends the upload's hold on the image. */
  finish(imageId: string): Promise<void>;
}

/** One WriteImageContent chunk (gRPC messages are bounded to 16 MiB; HTTP/JSON bodies to 1 MiB). */
export const uploadChunkBytesMax = 4 * 1024 * 1024;

/** An image named by its volume and its name (every request of the service has both). */
interface ImageRef { volume: string; name: string }

const imageNameRule = matches(imageNamePattern, "must be 1 to 128 characters of a-z, 0-9, \".\", \"_\", \"-\", starting and ending with a letter or digit");

function imageMessage(i: ImageRecord, s: StorageSnapshot): MessageInitShape<typeof ImageSchema> {
  const names = nodeNamesOf(s);
  return {
    id: i.id, name: i.name, volume: s.volumes.find((v) => v.id === i.volumeId)?.name ?? "", volumeId: i.volumeId, kind: i.kind, format: i.format,
    sizeBytes: BigInt(i.sizeBytes), state: i.state, generation: BigInt(i.generation), writerEpoch: BigInt(i.writerEpoch),
    writerNodeId: BigInt(i.writerNodeId ?? 0), writerNodeName: i.writerNodeId === null ? "" : (names.get(i.writerNodeId) ?? ""), writerClean: i.writerClean,
    createdAtMs: BigInt(i.createdAtMs),
    replicas: i.replicas.map((r) => ({
      nodeId: BigInt(r.nodeId), nodeName: names.get(r.nodeId) ?? "", inSync: r.inSync, fullHeal: r.fullHeal,
      healDoneBytes: BigInt(r.healDoneBytes), healTotalBytes: BigInt(r.healTotalBytes), reason: r.reason,
    })),
  };
}

function findImage(s: StorageSnapshot, ref: ImageRef): ImageRecord {
  const v = findVolume(s, ref.volume, "volume");
  const i = s.images.find((x) => x.volumeId === v.id && x.name === ref.name);
  if (!i) throw new ApiError("not_found", `volume "${ref.volume}" has no image named "${ref.name}"`, { field: "name" });
  return i;
}

function oneImage(ctx: HandlerContext, ref: ImageRef) {
  const s = storageSnapshot(ctx);
  return { image: imageMessage(findImage(s, ref), s) };
}

function checkSize(field: string, v: bigint): void {
  const problem = imageSizeProblem(Number(v));
  if (problem) throw invalid(field, problem);
}

function validateRef(r: ImageRef): void {
  check("volume", r.volume, volumeNameRule);
  check("name", r.name, imageNameRule);
}

function validateCreate(r: CreateImageRequest): void {
  validateRef(r);
  checkSize("size_bytes", r.sizeBytes);
  if (r.format !== "" && !(imageFormats as readonly string[]).includes(r.format)) throw invalid("format", `must be ${imageFormats.join(" or ")} (got ${JSON.stringify(r.format)})`);
  if (r.kind !== "" && !(imageKinds as readonly string[]).includes(r.kind)) throw invalid("kind", `must be one of ${imageKinds.join(", ")} (got ${JSON.stringify(r.kind)})`);
  if (r.kind !== "" && r.kind !== "disk" && r.format === "qcow2") throw invalid("format", `a ${r.kind} image must be raw`);
}

async function createImage(r: CreateImageRequest, ctx: HandlerContext) {
  const s = storageSnapshot(ctx);
  const v = findVolume(s, r.volume, "volume");
  if (s.images.some((i) => i.volumeId === v.id && i.name === r.name)) throw new ApiError("already_exists", `volume "${r.volume}" already has an image named "${r.name}"`, { field: "name" });
  const payload = { id: randomUUID(), volumeId: v.id, name: r.name, kind: r.kind || "disk", format: r.format || "raw", sizeBytes: Number(r.sizeBytes), state: r.upload ? "uploading" : "ready" };
  checkResult(await ctx.replica.execute({ type: "ext", name: "storage.image.create", payload }), `creating image "${r.name}" on volume "${r.volume}"`);
  ctx.auditDetail.sizeBytes = payload.sizeBytes;
  return oneImage(ctx, r);
}

/**
 * The running VMs that will not see a grown image before their next start. A running VM's host
 * agent grows a disk online within seconds (core/host/vm-grow.ts); one whose agent reports an
 * error (its QEMU refused an online grow) cannot, nor can a CD-ROM, which is not grown online.
 */
export function pendingRestart(vms: readonly VmRecord[], status: ReadonlyMap<string, VmStatusRecord>, image: string): string[] {
  const running = vms.filter((v) => {
    const s = status.get(v.id);
    return s !== undefined && (s.state === "running" || s.state === "paused");
  });
  const asDisk = diskImageUsers(running).get(image);
  if (asDisk !== undefined) {
    const vm = running.find((v) => v.name === asDisk)!;
    return status.get(vm.id)?.error ? [asDisk] : [];
  }
  const asCdrom = imageUsers(running).get(image);
  return asCdrom === undefined ? [] : [asCdrom];
}

async function resizeImage(r: ResizeImageRequest, ctx: HandlerContext) {
  const i = findImage(storageSnapshot(ctx), r);
  const sizeBytes = Number(r.sizeBytes);
  if (sizeBytes < i.sizeBytes) throw invalid("size_bytes", `image "${r.name}" is ${i.sizeBytes} bytes and can only grow (got ${sizeBytes}); shrinking would cut off its data`);
  checkResult(await ctx.replica.execute({ type: "ext", name: "storage.image.resize", payload: { id: i.id, sizeBytes } }), `resizing image "${r.name}"`);
  ctx.auditDetail.sizeBytes = sizeBytes;
  const vmsPendingRestart = ctx.replica.stateMachine.read((db) => pendingRestart(listVms(db), listVmStatus(db), `${r.volume}/${r.name}`)).value;
  return { ...oneImage(ctx, r), vmsPendingRestart };
}

/**
 * How long deleting an abandoned upload waits for its hold on the image to end: the upload is
 * finished (flushed, released) first, and the coordinator closes an idle image after about 2 s.
 */
export const abandonedUploadReleaseWaitMs = 15_000;
const releasePollIntervalMs = 100;

export type SleepFn = (ms: number) => Promise<void>;
const sleepDefault: SleepFn = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * An image still "uploading" is only the upload's: deleting it (the CLI does so when an upload
 * fails or is interrupted) ends the upload's hold first, then waits, bounded, for the writer to go.
 */
async function releaseAbandonedUpload(ctx: HandlerContext, r: ImageRef, i: ImageRecord, content: ImageContent, sleep: SleepFn): Promise<ImageRecord> {
  await content.finish(i.id).catch((err: unknown) => ctx.logger.warn("ending an abandoned upload before deleting its image", { image: `${r.volume}/${r.name}`, error: String(err) }));
  for (let waitedMs = 0; waitedMs < abandonedUploadReleaseWaitMs; waitedMs += releasePollIntervalMs) {
    const now = findImage(storageSnapshot(ctx), r);
    if (now.writerNodeId === null) return now;
    await sleep(releasePollIntervalMs);
  }
  return findImage(storageSnapshot(ctx), r);
}

async function deleteImage(r: ImageRef, ctx: HandlerContext, content: ImageContent | undefined, sleep: SleepFn) {
  const s = storageSnapshot(ctx);
  let i = findImage(s, r);
  if (i.writerNodeId !== null && i.state === "uploading" && content) i = await releaseAbandonedUpload(ctx, r, i, content, sleep);
  if (i.writerNodeId !== null) {
    const node = nodeNamesOf(s).get(i.writerNodeId) ?? String(i.writerNodeId);
    throw new ApiError("failed_precondition", `image "${r.name}" is open for writing on node ${node}; stop what uses it first`, { field: "name" });
  }
  checkResult(await ctx.replica.execute({ type: "ext", name: "storage.image.delete", payload: { id: i.id } }), `deleting image "${r.name}"`);
  return {};
}

async function verify(r: ImageRef, ctx: HandlerContext, verifyImage: VerifyImageFn | undefined) {
  const s = storageSnapshot(ctx);
  const i = findImage(s, r);
  if (!verifyImage) throw new ApiError("unavailable", `verifying image "${r.name}": this node does not run the replication service that reads the replicas`, { reason: "verify_unavailable" });
  let result: VerifyImageResult;
  try {
    result = await verifyImage(i.id);
  } catch (err) {
    if (err instanceof ApiError) throw err;
    throw new ApiError("unavailable", `verifying image "${r.name}": ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const names = nodeNamesOf(s);
  return {
    chunkBytes: BigInt(result.chunkBytes),
    replicas: result.replicas.map((x) => ({ nodeId: BigInt(x.nodeId), nodeName: names.get(x.nodeId) ?? "", ok: x.ok, error: x.error })),
    mismatches: result.mismatches.map((m) => ({ offset: BigInt(m.offset), nodeIds: m.nodes.map((n) => BigInt(n)) })),
    consistent: result.replicas.every((x) => x.ok) && result.mismatches.length === 0,
  };
}

function uploading(ctx: HandlerContext, r: ImageRef, content: ImageContent | undefined): { image: ImageRecord; content: ImageContent } {
  const i = findImage(storageSnapshot(ctx), r);
  if (i.state !== "uploading") throw new ApiError("failed_precondition", `image "${r.name}" is ${i.state}, not uploading; create it with upload set to send its content`, { field: "name" });
  if (!content) throw new ApiError("unavailable", `uploading to image "${r.name}": this node does not run the storage layer`, { reason: "storage_unavailable" });
  return { image: i, content };
}

async function writeContent(r: WriteImageContentRequest, ctx: HandlerContext, content: ImageContent | undefined) {
  const { image, content: c } = uploading(ctx, r, content);
  const offset = Number(r.offset);
  if (offset + r.data.length > image.sizeBytes) throw invalid("data", `bytes ${offset}..${offset + r.data.length} run past the end of image "${r.name}" (${image.sizeBytes} bytes)`);
  try {
    await c.write(image.id, offset, r.data);
  } catch (err) {
    throw new ApiError("unavailable", `writing to image "${r.name}" at ${offset}: ${(err as Error).message}`, { cause: err });
  }
  return { nextOffset: BigInt(offset + r.data.length) };
}

async function finishUpload(r: ImageRef, ctx: HandlerContext, content: ImageContent | undefined) {
  const { image, content: c } = uploading(ctx, r, content);
  try {
    await c.finish(image.id);
  } catch (err) {
    throw new ApiError("unavailable", `finishing the upload of image "${r.name}": ${(err as Error).message}`, { cause: err });
  }
  checkResult(await ctx.replica.execute({ type: "ext", name: "storage.image.setState", payload: { id: image.id, state: "ready" } }), `finishing the upload of image "${r.name}"`);
  return oneImage(ctx, r);
}

const object = (r: ImageRef) => `image/${r.volume}/${r.name}`;

export function imageService(opts: { verifyImage?: VerifyImageFn; content?: ImageContent; sleep?: SleepFn } = {}): RegisteredService {
  return defineService({
    descriptor: ImageService,
    policy: {
      createImage: { permission: storagePermissions.manage, mutation: true, object },
      listImages: { permission: storagePermissions.read, mutation: false },
      getImage: { permission: storagePermissions.read, mutation: false, object },
      resizeImage: { permission: storagePermissions.manage, mutation: true, object },
      deleteImage: { permission: storagePermissions.manage, mutation: true, object },
      // Reads every replica in full: for those who run the cluster, not for Auditors.
      verifyImage: { permission: storagePermissions.operate, mutation: false, object },
      // Data, not state: the upload is audited by its create and its finish, not per chunk.
      writeImageContent: { permission: storagePermissions.manage, mutation: false, object },
      finishImageUpload: { permission: storagePermissions.manage, mutation: true, object },
    },
    validate: {
      createImage: validateCreate, getImage: validateRef, deleteImage: validateRef, verifyImage: validateRef,
      listImages: (r) => { if (r.volume !== "") check("volume", r.volume, volumeNameRule); },
      resizeImage: (r) => { validateRef(r); checkSize("size_bytes", r.sizeBytes); },
      finishImageUpload: validateRef,
      writeImageContent: (r) => {
        validateRef(r);
        if (r.offset < 0n) throw invalid("offset", `must not be negative (got ${r.offset})`);
        if (r.data.length === 0 || r.data.length > uploadChunkBytesMax) throw invalid("data", `must be 1 to ${uploadChunkBytesMax} bytes (got ${r.data.length})`);
      },
    },
    handlers: {
      createImage,
      listImages: async (r, ctx) => {
        const s = storageSnapshot(ctx);
        const volumeId = r.volume === "" ? undefined : findVolume(s, r.volume, "volume").id;
        return { images: s.images.filter((i) => volumeId === undefined || i.volumeId === volumeId).map((i) => imageMessage(i, s)) };
      },
      getImage: async (r, ctx) => oneImage(ctx, r),
      resizeImage,
      deleteImage: (r, ctx) => deleteImage(r, ctx, opts.content, opts.sleep ?? sleepDefault),
      verifyImage: (r, ctx) => verify(r, ctx, opts.verifyImage),
      writeImageContent: (r, ctx) => writeContent(r, ctx, opts.content),
      finishImageUpload: (r, ctx) => finishUpload(r, ctx, opts.content),
    },
  });
}
