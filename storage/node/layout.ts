// Where a node keeps the bricks and image files of the volume layer. A brick path of "" in the
// replicated state means "this node's default" (the proposer cannot know other nodes' data
// directories), resolved here, on the node that owns the brick.
import { join } from "node:path";
import type { BrickRecord, ImageRecord, VolumeRecord } from "../volume/model.ts";

export const imagesDirName = "images";
/** File names the provisioner owns inside a brick's images directory. */
export const imageFilePattern = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.(raw|qcow2)(\.epoch)?$/;

export function brickDir(dataDir: string, volume: Pick<VolumeRecord, "name">, brick: Pick<BrickRecord, "path">): string {
  return brick.path !== "" ? brick.path : join(dataDir, "bricks", volume.name);
}

export function imageFileName(image: Pick<ImageRecord, "id" | "format">): string {
  return `${image.id}.${image.format}`;
}

export function imageFilePath(brick: string, image: Pick<ImageRecord, "id" | "format">): string {
  return join(brick, imagesDirName, imageFileName(image));
}

/** The NBD export name of an image on every node: "<volume>/<image>". */
export function exportName(volume: Pick<VolumeRecord, "name">, image: Pick<ImageRecord, "name">): string {
  return `${volume.name}/${image.name}`;
}

export function nbdSocketPath(dataDir: string): string {
  return join(dataDir, "run", "nbd.sock");
}

const qcow2OverheadFixedBytes = 4 * 1024 * 1024;
const qcow2ClusterBytes = 64 * 1024;

/**
 * Bytes of the brick file (and of the NBD export) for an image. Raw: its size. qcow2: the
 * virtual size plus room for qcow2's own metadata (an L2 entry of 8 bytes and a refcount of 2
 * bytes per 64 KiB cluster, bounded above by size/4096, plus header, L1 and refcount tables),
 * since QEMU runs qcow2 on top of a fixed-size NBD export and must never hit its end.
 */
export function imageFileBytes(image: Pick<ImageRecord, "format" | "sizeBytes">): number {
  if (image.format === "raw") return image.sizeBytes;
  const bytes = image.sizeBytes + Math.ceil(image.sizeBytes / 4096) + qcow2OverheadFixedBytes;
  return Math.ceil(bytes / qcow2ClusterBytes) * qcow2ClusterBytes;
}
