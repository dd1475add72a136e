// VolumeService.VerifyVolume: compares the per-chunk checksums of every image of a volume across
// its in-sync replicas, one image at a time (each verify already reads every replica in full, so
// running them side by side would only make them fight for the same disks), through the
// replication layer's per-image verify — the one ImageService.VerifyImage uses. What each image's
// verify found is judged here: consistent, differs, unverified (a replica could not be read) or
// skipped (nothing to compare).
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { VerifyVolumeResponseSchema } from "../../core/api/gen/trivet/v1/storage_pb.ts";
import { ApiError } from "../../core/api/server/errors.ts";
import type { HandlerContext } from "../../core/api/server/service.ts";
import { imageFileBytes } from "../node/layout.ts";
import type { VerifyImageFn, VerifyImageResult } from "./image-service.ts";
import type { ImageRecord } from "./model.ts";
import { findVolume, nodeNamesOf, storageSnapshot } from "./service-common.ts";

export type ImageVerdict = "consistent" | "differs" | "unverified" | "skipped";

export interface ImageVerifyReport {
  name: string;
  result: ImageVerdict;
  /** Why it was skipped or unverified, or what could not be read ("" when consistent). */
  reason: string;
  /** The in-sync replicas, and whether each was read. */
  replicas: Array<{ nodeId: number; ok: boolean; error: string }>;
  chunksCompared: number;
  mismatches: Array<{ offset: number; nodes: number[]; noMajority: boolean }>;
}

export interface VolumeVerifyReport {
  /** Chunk size of the comparisons (0 when no image was compared). */
  chunkBytes: number;
  images: ImageVerifyReport[];
  /** No image differs or is unverified; skipped images do not count. */
  consistent: boolean;
}

function report(image: ImageRecord, result: ImageVerdict, reason: string, more: Partial<ImageVerifyReport> = {}): ImageVerifyReport {
  return { name: image.name, result, reason, replicas: [], chunksCompared: 0, mismatches: [], ...more };
}

/**
 * Judges one image's verify result. The replication layer lists, per differing chunk, the nodes
 * whose checksum differs from the most common one; when the agreeing group is no strict majority
 * of the replicas read (two copies that differ), which copy is right is unknown.
 */
export function judgeImage(image: ImageRecord, r: VerifyImageResult): ImageVerifyReport {
  const read = r.replicas.filter((x) => x.ok);
  const unread = r.replicas.filter((x) => !x.ok);
  const unreadText = unread.map((x) => `node ${x.nodeId}: ${x.error}`).join("; ");
  const because = unreadText === "" ? "" : ` (${unreadText})`;
  const replicas = r.replicas.map((x) => ({ ...x }));
  if (read.length === 0) return report(image, "unverified", `no in-sync replica reachable${because}`, { replicas });
  if (read.length === 1) return report(image, "unverified", `only one in-sync replica reachable, nothing to compare it with${because}`, { replicas });
  const chunksCompared = r.chunkBytes > 0 ? Math.ceil(imageFileBytes(image) / r.chunkBytes) : 0;
  const mismatches = r.mismatches.map((m) => ({
    offset: Number(m.offset), nodes: [...m.nodes], noMajority: 2 * (read.length - m.nodes.length) <= read.length,
  }));
  const unreadNote = unread.length > 0 ? `; not read: ${unreadText}` : "";
  if (mismatches.length > 0) return report(image, "differs", `${mismatches.length} chunk(s) differ${unreadNote}`, { replicas, chunksCompared, mismatches });
  if (unread.length > 0) return report(image, "unverified", `the ${read.length} replicas read agree${unreadNote}`, { replicas, chunksCompared });
  return report(image, "consistent", "", { replicas, chunksCompared });
}

/** Why an image is not compared at all, or undefined when it is. */
function skipReason(image: ImageRecord): string | undefined {
  if (image.state === "uploading") return "uploading: its content is still being written";
  const inSync = image.replicas.filter((r) => r.inSync);
  if (inSync.length === 0) return undefined;
  if (inSync.length === 1) return `only node ${inSync[0]!.nodeId}'s replica is in sync: nothing to compare it with`;
  return undefined;
}

/** Verifies the images one at a time; stops (the rest unverified) once `signal` aborts. */
export async function verifyImages(images: readonly ImageRecord[], verifyImage: VerifyImageFn, signal?: AbortSignal): Promise<VolumeVerifyReport> {
  const out: ImageVerifyReport[] = [];
  let chunkBytes = 0;
  for (const image of images) {
    const skip = skipReason(image);
    if (skip !== undefined) {
      out.push(report(image, "skipped", skip));
      continue;
    }
    if (signal?.aborted === true) {
      out.push(report(image, "unverified", "not reached: the request was cancelled"));
      continue;
    }
    try {
      const r = await verifyImage(image.id);
      chunkBytes ||= r.chunkBytes;
      out.push(judgeImage(image, r));
    } catch (err) {
      out.push(report(image, "unverified", `verifying failed: ${err instanceof Error ? err.message : String(err)}`));
    }
  }
  return { chunkBytes, images: out, consistent: out.every((i) => i.result === "consistent" || i.result === "skipped") };
}

/** The VerifyVolume handler. */
export async function verifyVolume(r: { name: string }, ctx: HandlerContext, verifyImage: VerifyImageFn | undefined): Promise<MessageInitShape<typeof VerifyVolumeResponseSchema>> {
  const s = storageSnapshot(ctx);
  const v = findVolume(s, r.name);
  if (!verifyImage) throw new ApiError("unavailable", `verifying volume "${r.name}": this node does not run the replication service that reads the replicas`, { reason: "verify_unavailable" });
  const result = await verifyImages(s.images.filter((i) => i.volumeId === v.id), verifyImage, ctx.signal);
  const names = nodeNamesOf(s);
  const name = (id: number) => names.get(id) ?? "";
  ctx.logger.info("volume verified", { volume: r.name, consistent: result.consistent, images: result.images.length });
  return {
    volume: v.name, chunkBytes: BigInt(result.chunkBytes), consistent: result.consistent,
    images: result.images.map((i) => ({
      name: i.name, result: i.result, reason: i.reason, chunksCompared: BigInt(i.chunksCompared),
      replicas: i.replicas.map((x) => ({ nodeId: BigInt(x.nodeId), nodeName: name(x.nodeId), ok: x.ok, error: x.error })),
      mismatches: i.mismatches.map((m) => ({ offset: BigInt(m.offset), nodeIds: m.nodes.map(BigInt), nodeNames: m.nodes.map(name), noMajority: m.noMajority })),
    })),
  };
}
