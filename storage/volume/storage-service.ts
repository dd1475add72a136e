// VolumeService: create, list, inspect, verify (volume-verify.ts) and delete replicated volumes,
// and storageServices(), the volume and image services as the daemon registers them. Mutations
// only change the replicated records; each node's storage agent creates the brick directories and
// image files and reports brick capacity. Brick paths are stored as given, "" meaning the node's
// default: the proposer cannot know the other nodes' data dirs, so each agent resolves "" to
// `<its data dir>/bricks/<volume name>`.
import { randomUUID } from "node:crypto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { VolumeService, type CreateVolumeRequest, type VolumeSchema } from "../../core/api/gen/trivet/v1/storage_pb.ts";
import { ApiError, checkResult } from "../../core/api/server/errors.ts";
import { defineService, type HandlerContext, type RegisteredService } from "../../core/api/server/service.ts";
import { check, intBetween, invalid, matches, noFields } from "../../core/api/server/validation.ts";
import { imageService, type ImageContent, type VerifyImageFn } from "./image-service.ts";
import { arbiterProblem, arbiterReplicaCount, brickPathProblem, volumeReplicaCountMax, type VolumeRecord } from "./model.ts";
import { findVolume, nodeNamesOf, storagePermissions, storageSnapshot, volumeNameRule, type StorageSnapshot } from "./service-common.ts";
import { verifyVolume } from "./volume-verify.ts";

const nodeNameRule = matches(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, "must be the name of a node of the cluster");

function volumeMessage(v: VolumeRecord, s: StorageSnapshot): MessageInitShape<typeof VolumeSchema> {
  const names = nodeNamesOf(s);
  return {
    id: v.id, name: v.name, replicaCount: v.replicaCount, arbiter: v.arbiter, createdAtMs: BigInt(v.createdAtMs), imageCount: s.images.filter((i) => i.volumeId === v.id).length,
    bricks: v.bricks.map((b) => ({
      nodeId: BigInt(b.nodeId), nodeName: names.get(b.nodeId) ?? "", path: b.path,
      capacityBytes: BigInt(b.capacityBytes), usedBytes: BigInt(b.usedBytes), reportedAtMs: BigInt(b.reportedAtMs),
    })),
  };
}

function validateCreate(r: CreateVolumeRequest): void {
  check("name", r.name, volumeNameRule);
  check("replica_count", r.replicaCount, intBetween(0, volumeReplicaCountMax));
  if (r.brickPaths.length > volumeReplicaCountMax) throw invalid("brick_paths", `at most ${volumeReplicaCountMax} entries (one per replica)`);
  const seen = new Set<string>();
  r.brickPaths.forEach((b, i) => {
    check(`brick_paths[${i}].node_name`, b.nodeName, nodeNameRule);
    if (seen.has(b.nodeName)) throw invalid(`brick_paths[${i}].node_name`, `node "${b.nodeName}" is named twice; a volume has one brick per node`);
    seen.add(b.nodeName);
    const problem = brickPathProblem(b.path);
    if (problem) throw invalid(`brick_paths[${i}].path`, problem);
  });
  if (r.replicaCount !== 0 && r.brickPaths.length > r.replicaCount) throw invalid("brick_paths", `names ${r.brickPaths.length} nodes but the volume has ${r.replicaCount} replicas`);
  if (r.arbiter && r.replicaCount !== 0 && r.replicaCount !== arbiterReplicaCount) {
    throw invalid("arbiter", `an arbiter goes with replica_count ${arbiterReplicaCount} only (got ${r.replicaCount}); ask for 2 replicas, or no arbiter`);
  }
}

/**
 * An arbiter volume needs enough Raft voters besides its two data nodes (model.ts says why),
 * counted in Raft's live configuration (the nodes table's roles are not kept up to date by
 * promotions). Only here, at the edge: apply cannot read the configuration deterministically, and
 * safety does not rest on the count — a copy leaves the in-sync set only through a Raft commit
 * whatever the voters — only keeping the volume writable after losing a data node does.
 */
function checkArbiter(ctx: HandlerContext, replicaCount: number): void {
  const problem = arbiterProblem(replicaCount, ctx.replica.host.status().confState.voters.length);
  if (problem) throw new ApiError("failed_precondition", `field "arbiter": ${problem}`, { field: "arbiter" });
}

/** The bricks of a new volume: the named nodes first, then the others by id, up to the replica count. */
function chooseBricks(r: CreateVolumeRequest, s: StorageSnapshot): Array<{ nodeId: number; path: string }> {
  const replicaCount = r.replicaCount || (r.arbiter ? arbiterReplicaCount : Math.min(volumeReplicaCountMax, s.nodes.length));
  if (replicaCount > s.nodes.length) throw invalid("replica_count", `${replicaCount} replicas need ${replicaCount} nodes, and the cluster has ${s.nodes.length}`);
  const bricks = r.brickPaths.map((b, i) => {
    const node = s.nodes.find((n) => n.name === b.nodeName);
    if (!node) throw new ApiError("not_found", `field "brick_paths[${i}].node_name": node "${b.nodeName}" is not a member of the cluster`, { field: `brick_paths[${i}].node_name` });
    return { nodeId: node.nodeId, path: b.path };
  });
  if (bricks.length > replicaCount) throw invalid("brick_paths", `names ${bricks.length} nodes but the volume has ${replicaCount} replicas`);
  for (const n of s.nodes) {
    if (bricks.length === replicaCount) break;
    if (!bricks.some((b) => b.nodeId === n.nodeId)) bricks.push({ nodeId: n.nodeId, path: "" });
  }
  return bricks;
}

async function createVolume(r: CreateVolumeRequest, ctx: HandlerContext) {
  const s = storageSnapshot(ctx);
  if (s.volumes.some((v) => v.name === r.name)) throw new ApiError("already_exists", `a volume named "${r.name}" already exists`, { field: "name" });
  if (s.nodes.length === 0) throw new ApiError("failed_precondition", "the cluster lists no nodes yet", { field: "name" });
  const bricks = chooseBricks(r, s);
  if (r.arbiter) checkArbiter(ctx, bricks.length);
  const id = randomUUID();
  const payload = { id, name: r.name, replicaCount: bricks.length, arbiter: r.arbiter, bricks };
  checkResult(await ctx.replica.execute({ type: "ext", name: "storage.volume.create", payload }), `creating volume "${r.name}"`);
  ctx.auditDetail.replicaCount = bricks.length;
  if (r.arbiter) ctx.auditDetail.arbiter = true;
  const after = storageSnapshot(ctx);
  return { volume: volumeMessage(findVolume(after, r.name), after) };
}

async function deleteVolume(r: { name: string }, ctx: HandlerContext) {
  const s = storageSnapshot(ctx);
  const v = findVolume(s, r.name);
  const images = s.images.filter((i) => i.volumeId === v.id).length;
  if (images > 0) throw new ApiError("failed_precondition", `volume "${r.name}" still has ${images} image(s); delete them first`, { field: "name" });
  checkResult(await ctx.replica.execute({ type: "ext", name: "storage.volume.delete", payload: { id: v.id } }), `deleting volume "${r.name}"`);
  return {};
}

const byName = (r: { name: string }) => check("name", r.name, volumeNameRule);
const object = (r: { name: string }) => `volume/${r.name}`;

export function volumeService(opts: { verifyImage?: VerifyImageFn } = {}): RegisteredService {
  return defineService({
    descriptor: VolumeService,
    policy: {
      createVolume: { permission: storagePermissions.manage, mutation: true, object },
      listVolumes: { permission: storagePermissions.read, mutation: false },
      getVolume: { permission: storagePermissions.read, mutation: false, object },
      deleteVolume: { permission: storagePermissions.manage, mutation: true, object },
      // Reads every replica of every image in full: like VerifyImage, for those who run the cluster.
      verifyVolume: { permission: storagePermissions.operate, mutation: false, object },
    },
    validate: { createVolume: validateCreate, listVolumes: noFields, getVolume: byName, deleteVolume: byName, verifyVolume: byName },
    handlers: {
      createVolume,
      listVolumes: async (_r, ctx) => {
        const s = storageSnapshot(ctx);
        return { volumes: s.volumes.map((v) => volumeMessage(v, s)) };
      },
      getVolume: async (r, ctx) => {
        const s = storageSnapshot(ctx);
        return { volume: volumeMessage(findVolume(s, r.name), s) };
      },
      deleteVolume,
      verifyVolume: (r, ctx) => verifyVolume(r, ctx, opts.verifyImage),
    },
  });
}

export interface StorageServiceOptions {
  /** Checksums an image on its replicas (the replication layer's); VerifyImage and VerifyVolume are unavailable without it. */
  verifyImage?: VerifyImageFn;
  content?: ImageContent;
}

/** The volume and image services, as the daemon registers them. */
export function storageServices(opts: StorageServiceOptions = {}): RegisteredService[] {
  return [volumeService({ verifyImage: opts.verifyImage }), imageService({ verifyImage: opts.verifyImage, content: opts.content })];
}
