// The replicated records of the volume layer (volumes, their bricks, images and their replicas)
// as the state module keeps them, and the pure checks of their fields. Shared by the state
// commands (storage-module.ts), the API (storage-service.ts) and the CLI, so a name or a size is
// judged by one rule everywhere.

/** Same rule as VM names: a lower-case DNS label. */
export const volumeNamePattern = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** Image names may carry dots and underscores ("debian-12.iso"); they start and end with a letter or digit. */
export const imageNamePattern = /^[a-z0-9]([a-z0-9._-]{0,126}[a-z0-9])?$/;
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Replicas of a volume: 3 (survives one node), 2 for a two-node cluster, 1 for a single node. */
export const volumeReplicaCountMax = 3;
export const imageSectorBytes = 512;
/** 64 TiB: far above any brick of these clusters, well inside a safe integer. */
export const imageSizeBytesMax = 64 * 1024 ** 4;
export const brickPathCharsMax = 1024;

export type ImageKind = "disk" | "iso" | "template";
export type ImageFormat = "raw" | "qcow2";
export type ImageState = "ready" | "uploading";
export const imageKinds: readonly ImageKind[] = ["disk", "iso", "template"];
export const imageFormats: readonly ImageFormat[] = ["raw", "qcow2"];
export const imageStates: readonly ImageState[] = ["ready", "uploading"];

export interface BrickRecord {
  volumeId: string;
  nodeId: number;
  /**
   * Absolute directory on that node, or "" for the node's default: each node's storage agent
   * resolves "" to `<its data dir>/bricks/<volume name>` (the proposer cannot know other nodes' data dirs).
   */
  path: string;
  capacityBytes: number;
  usedBytes: number;
  /** 0 before the node's storage agent first reported. */
  reportedAtMs: number;
}

export interface VolumeRecord {
  id: string;
  name: string;
  replicaCount: number;
  /**
   * Replica 2 + arbiter: Raft (with at least `arbiterVotersMin` voters) arbitrates which of the two
   * data copies are in sync, so writes need only one in-sync copy (see writeQuorum).
   */
  arbiter: boolean;
  createdAtMs: number;
  /** One per replica, by node id. */
  bricks: BrickRecord[];
}

export interface ReplicaRecord {
  nodeId: number;
  inSync: boolean;
  /** The dirty regions are unknown (the coordinator lost its dirty map): heal by comparing. */
  fullHeal: boolean;
  healDoneBytes: number;
  /** Why it fell out of sync (empty while in sync). */
  reason: string;
  healTotalBytes: number;
  /**
   * The regions it missed as [offset, length] pairs, as the last writer knew them when it released
   * the image cleanly; null when unknown. Meaningful only to the next writer, and only when that
   * release was the last one (ImageRecord.writerClean): the next writer's open resumes its dirty map.
   */
  dirtyRanges: [number, number][] | null;
}

export interface ImageRecord {
  id: string;
  volumeId: string;
  name: string;
  kind: ImageKind;
  format: ImageFormat;
  sizeBytes: number;
  state: ImageState;
  /** Bumped on every change of the replica set (in sync / out of sync). */
  generation: number;
  /** Bumped by every acquireWriter; bricks refuse requests of older epochs. */
  writerEpoch: number;
  writerNodeId: number | null;
  /** The last writer released it cleanly (or nobody ever opened it). */
  writerClean: boolean;
  createdAtMs: number;
  /** One per brick of the volume, by node id. */
  replicas: ReplicaRecord[];
}

/**
 * Writes need this many in-sync replicas: a majority of the volume's replica set; with an arbiter,
 * one. A majority of the copies is what keeps two writers from each believing their copy is the
 * good one; an arbiter volume gets that from Raft instead: a copy leaves the in-sync set only by a
 * committed command of the current writer epoch (a partitioned writer cannot commit one), and
 * only in-sync copies are read. So one copy may carry on alone while the other is out of sync.
 */
export function writeQuorum(replicaCount: number, arbiter = false): number {
  return arbiter ? 1 : Math.floor(replicaCount / 2) + 1;
}

/** An arbiter volume has exactly this many data copies. */
export const arbiterReplicaCount = 2;
/**
 * Raft voters an arbiter volume needs: with one of the two data nodes gone, the others must still
 * commit the out-of-sync mark, so the arbitration cannot rest on the two data nodes alone.
 */
export const arbiterVotersMin = 3;

/** Why a volume cannot have an arbiter, or undefined when it can. */
export function arbiterProblem(replicaCount: number, voters: number): string | undefined {
  if (replicaCount !== arbiterReplicaCount) return `an arbiter goes with replica ${arbiterReplicaCount} only (got replica ${replicaCount}); use 2 replicas with an arbiter, or no arbiter`;
  if (voters < arbiterVotersMin) return `an arbiter needs a cluster of at least ${arbiterVotersMin} Raft voters to arbitrate which copy is in sync (the cluster has ${voters}); join more nodes first`;
  return undefined;
}

/** A field that is wrong, by its name in the command payload. */
export class StorageFieldError extends Error {
  readonly code = "storage_invalid";
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`storage field "${field}": ${reason}`);
    this.name = "StorageFieldError";
  }
}

function fail(field: string, reason: string): never {
  throw new StorageFieldError(field, reason);
}

export function checkUuid(field: string, v: unknown): string {
  if (typeof v !== "string" || !uuidPattern.test(v)) fail(field, "must be a lower-case RFC 4122 UUID");
  return v;
}

export function checkVolumeName(field: string, v: unknown): string {
  if (typeof v !== "string" || !volumeNamePattern.test(v)) fail(field, `must be a lower-case DNS label of 1 to 63 characters (got ${JSON.stringify(v)})`);
  return v;
}

export function checkImageName(field: string, v: unknown): string {
  if (typeof v !== "string" || !imageNamePattern.test(v)) fail(field, `must be 1 to 128 characters of a-z, 0-9, ".", "_", "-", starting and ending with a letter or digit (got ${JSON.stringify(v)})`);
  return v;
}

export function checkNodeId(field: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) fail(field, `must be a node id, a positive integer (got ${JSON.stringify(v)})`);
  return v;
}

export function checkNonNegative(field: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) fail(field, `must be a non-negative integer (got ${JSON.stringify(v)})`);
  return v;
}

export function checkReplicaCount(field: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > volumeReplicaCountMax) fail(field, `must be an integer from 1 to ${volumeReplicaCountMax} (got ${JSON.stringify(v)})`);
  return v;
}

/** Why a size is not a valid image size, or undefined when it is. */
export function imageSizeProblem(bytes: number): string | undefined {
  if (!Number.isSafeInteger(bytes) || bytes < imageSectorBytes) return `must be a whole number of bytes of at least ${imageSectorBytes} (got ${bytes})`;
  if (bytes % imageSectorBytes !== 0) return `must be a multiple of ${imageSectorBytes} bytes (got ${bytes}; ${bytes % imageSectorBytes} bytes over)`;
  if (bytes > imageSizeBytesMax) return `must be at most ${imageSizeBytesMax} bytes (64 TiB; got ${bytes})`;
  return undefined;
}

export function checkImageSize(field: string, v: unknown): number {
  if (typeof v !== "number") fail(field, `must be a number of bytes (got ${JSON.stringify(v)})`);
  const problem = imageSizeProblem(v);
  if (problem) fail(field, problem);
  return v;
}

/** "" (the node's default directory) or an absolute, normalized path. */
export function brickPathProblem(path: string): string | undefined {
  if (path === "") return undefined;
  if (path.length > brickPathCharsMax || /[\n\0]/.test(path)) return `must be a single-line path of at most ${brickPathCharsMax} characters`;
  if (!path.startsWith("/")) return `must be an absolute path, or empty for the node's default <data dir>/bricks/<volume> (got ${JSON.stringify(path)})`;
  if (path.split("/").some((part) => part === "." || part === "..")) return `must not contain "." or ".." components (got ${JSON.stringify(path)})`;
  return undefined;
}

export function checkBrickPath(field: string, v: unknown): string {
  if (typeof v !== "string") fail(field, "must be a string");
  const problem = brickPathProblem(v);
  if (problem) fail(field, problem);
  return v;
}

export function checkOneOf<T extends string>(field: string, v: unknown, allowed: readonly T[]): T {
  if (typeof v !== "string" || !(allowed as readonly string[]).includes(v)) fail(field, `must be one of ${allowed.join(", ")} (got ${JSON.stringify(v)})`);
  return v as T;
}

/** ISO and template images are plain byte images: raw only. */
export function checkKindFormat(kind: ImageKind, format: ImageFormat): void {
  if (kind !== "disk" && format !== "raw") fail("format", `a ${kind} image must be raw (got ${format})`);
}
