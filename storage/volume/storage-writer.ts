// The writer-epoch and replica-set commands of the storage state module. The writer epoch fences
// old coordinators (bricks refuse lower epochs); a replica-set change is accepted only from the
// current epoch, and a replica may leave the in-sync set only while a write quorum of the
// volume's replicas stays in it — which is why an acknowledged write cannot be lost by reading
// from the replicas the state calls in sync.
import { CommandError } from "../../core/state/errors.ts";
import type { ApplyContext, CommandSpec, StateModule } from "../../core/state/modules.ts";
import { checkNodeId, checkNonNegative, checkUuid, StorageFieldError, writeQuorum, type ImageRecord, type ReplicaRecord } from "./model.ts";
import { checked, failure, fields, imageOr, isFailure, type Failure } from "./payload.ts";
import { getVolume } from "./storage-queries.ts";

export interface EpochPayload { id: string; epoch: number; nodeId: number }

function epochFields(cmd: string, payload: unknown): EpochPayload & { p: Record<string, unknown> } {
  const p = fields(cmd, payload);
  return checked(cmd, () => ({ p, id: checkUuid("id", p.id), epoch: checkNonNegative("epoch", p.epoch), nodeId: checkNodeId("nodeId", p.nodeId) }));
}

/** The image and the replica named by the payload, when the payload's epoch is the current one. */
function currentReplica(ctx: ApplyContext, p: EpochPayload, doing: string): { image: ImageRecord; replica: ReplicaRecord } | Failure {
  const image = imageOr(ctx, p.id);
  if (isFailure(image)) return image;
  if (p.epoch !== image.writerEpoch) return failure("stale_epoch", "epoch", `${doing} of image "${image.name}": epoch ${p.epoch} is not the current writer epoch ${image.writerEpoch}`);
  const replica = image.replicas.find((r) => r.nodeId === p.nodeId);
  if (!replica) return failure("not_found", "nodeId", `${doing} of image "${image.name}": node ${p.nodeId} holds no replica of it`);
  return { image, replica };
}

const setReplica = "UPDATE storage_replicas SET in_sync = ?, full_heal = ?, heal_done_bytes = ?, heal_total_bytes = ?, reason = ? WHERE image_id = ? AND node_id = ?";
const bumpGeneration = "UPDATE storage_images SET generation = generation + 1 WHERE id = ? RETURNING generation";

const acquireWriter: CommandSpec<{ id: string; nodeId: number }> = {
  validate(payload) {
    const p = fields("storage.image.acquireWriter", payload);
    return checked("storage.image.acquireWriter", () => ({ id: checkUuid("id", p.id), nodeId: checkNodeId("nodeId", p.nodeId) }));
  },
  apply(ctx, p) {
    const image = imageOr(ctx, p.id);
    if (isFailure(image)) return image;
    const epoch = image.writerEpoch + 1;
    ctx.prepare("UPDATE storage_images SET writer_epoch = ?, writer_node_id = ?, writer_clean = 0 WHERE id = ?").run(epoch, p.nodeId, p.id);
    return { ok: true, epoch, previousClean: image.writerClean, previousNodeId: image.writerNodeId };
  },
};

/** At most this many [offset, length] ranges per replica are kept across a release; more: compare-heal. */
export const dirtyRangesMax = 4096;

export interface DirtyRanges { nodeId: number; ranges: [number, number][] }

/** The optional `dirty` field of releaseWriter: per out-of-sync replica, the regions it missed. */
function checkDirty(v: unknown): DirtyRanges[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.length > 64) throw new StorageFieldError("dirty", "must be a list of at most 64 {nodeId, ranges} entries");
  return v.map((e: unknown, i) => {
    const o = (e ?? {}) as { nodeId?: unknown; ranges?: unknown };
    const nodeId = checkNodeId(`dirty[${i}].nodeId`, o.nodeId);
    if (!Array.isArray(o.ranges) || o.ranges.length > dirtyRangesMax) throw new StorageFieldError(`dirty[${i}].ranges`, `must be a list of at most ${dirtyRangesMax} [offset, length] pairs`);
    const ranges = o.ranges.map((r: unknown, j): [number, number] => {
      const ok = Array.isArray(r) && r.length === 2 && Number.isSafeInteger(r[0]) && Number.isSafeInteger(r[1]) && (r[0] as number) >= 0 && (r[1] as number) > 0;
      if (!ok) throw new StorageFieldError(`dirty[${i}].ranges[${j}]`, "must be [offset, length] with offset >= 0 and length > 0 (bytes)");
      return [r[0] as number, r[1] as number];
    });
    return { nodeId, ranges };
  });
}

const releaseWriter: CommandSpec<{ id: string; epoch: number; dirty: DirtyRanges[] }> = {
  validate(payload) {
    const p = fields("storage.image.releaseWriter", payload);
    return checked("storage.image.releaseWriter", () => ({ id: checkUuid("id", p.id), epoch: checkNonNegative("epoch", p.epoch), dirty: checkDirty(p.dirty) }));
  },
  apply(ctx, p) {
    const image = imageOr(ctx, p.id);
    if (isFailure(image)) return image;
    // A release by a superseded writer must not clear the current one's claim.
    if (p.epoch !== image.writerEpoch) return { ok: true, released: false };
    ctx.prepare("UPDATE storage_images SET writer_node_id = NULL, writer_clean = 1 WHERE id = ?").run(p.id);
    // What the next writer may resume: the regions of each out-of-sync replica this writer knew
    // completely; for every other replica nothing (unknown, or in sync). Ranges past the image are cut.
    const setDirty = ctx.prepare("UPDATE storage_replicas SET dirty_ranges = ? WHERE image_id = ? AND node_id = ?");
    for (const r of image.replicas) {
      const known = r.inSync ? undefined : p.dirty.find((d) => d.nodeId === r.nodeId);
      const ranges = known?.ranges.filter(([o]) => o < image.sizeBytes).map(([o, n]): [number, number] => [o, Math.min(n, image.sizeBytes - o)]);
      setDirty.run(ranges === undefined ? null : JSON.stringify(ranges), p.id, r.nodeId);
    }
    return { ok: true, released: true };
  },
};

/** Why a replica fell out of sync, as the coordinator saw it (shown by the API and in events). */
export const replicaReasonCharsMax = 200;

const replicaOutOfSync: CommandSpec<EpochPayload & { fullHeal: boolean; reason: string }> = {
  validate(payload) {
    const { p, ...rest } = epochFields("storage.image.replicaOutOfSync", payload);
    const fullHeal = p.fullHeal ?? false;
    if (typeof fullHeal !== "boolean") throw new CommandError("storage.image.replicaOutOfSync", "fullHeal", "must be true or false");
    const reason = p.reason ?? "";
    if (typeof reason !== "string" || reason.length > replicaReasonCharsMax) throw new CommandError("storage.image.replicaOutOfSync", "reason", `must be a string of at most ${replicaReasonCharsMax} characters`);
    return { ...rest, fullHeal, reason };
  },
  apply(ctx, p) {
    const found = currentReplica(ctx, p, "marking a replica out of sync");
    if (isFailure(found)) return found;
    const { image, replica } = found;
    const fullHeal = replica.fullHeal || p.fullHeal;
    if (!replica.inSync && fullHeal === replica.fullHeal) return { ok: true, generation: image.generation };
    if (replica.inSync) {
      const volume = getVolume(ctx.db, image.volumeId)!;
      const left = image.replicas.filter((r) => r.inSync).length - 1;
      const quorum = writeQuorum(volume.replicaCount, volume.arbiter);
      if (left < quorum) {
        return failure("quorum", "nodeId", `marking node ${p.nodeId}'s replica of image "${image.name}" out of sync would leave ${left} in-sync replica(s), fewer than the write quorum of ${quorum}`);
      }
    }
    // Heal counters restart when a replica newly falls out of sync; a full heal only widens.
    const [done, total] = replica.inSync ? [0, 0] : [replica.healDoneBytes, replica.healTotalBytes];
    ctx.prepare(setReplica).run(0, fullHeal ? 1 : 0, done, total, replica.inSync ? p.reason : replica.reason || p.reason, p.id, p.nodeId);
    return { ok: true, generation: ctx.prepare(bumpGeneration).pluck().get(p.id) as number };
  },
};

const replicaInSync: CommandSpec<EpochPayload> = {
  validate(payload) {
    const { p: _p, ...rest } = epochFields("storage.image.replicaInSync", payload);
    return rest;
  },
  apply(ctx, p) {
    const found = currentReplica(ctx, p, "marking a replica in sync");
    if (isFailure(found)) return found;
    if (found.replica.inSync) return { ok: true, generation: found.image.generation };
    ctx.prepare(setReplica).run(1, 0, 0, 0, "", p.id, p.nodeId);
    ctx.prepare("UPDATE storage_replicas SET dirty_ranges = NULL WHERE image_id = ? AND node_id = ?").run(p.id, p.nodeId);
    return { ok: true, generation: ctx.prepare(bumpGeneration).pluck().get(p.id) as number };
  },
};

const healProgress: CommandSpec<EpochPayload & { doneBytes: number; totalBytes: number }> = {
  validate(payload) {
    const cmd = "storage.image.healProgress";
    const { p, ...rest } = epochFields(cmd, payload);
    return checked(cmd, () => {
      const totalBytes = checkNonNegative("totalBytes", p.totalBytes);
      const doneBytes = checkNonNegative("doneBytes", p.doneBytes);
      if (doneBytes > totalBytes) throw new StorageFieldError("doneBytes", `must not exceed totalBytes (${doneBytes} > ${totalBytes})`);
      return { ...rest, doneBytes, totalBytes };
    });
  },
  apply(ctx, p) {
    const found = currentReplica(ctx, p, "recording heal progress");
    if (isFailure(found)) return found;
    // A late report after the replica came back in sync would show a finished heal as running.
    if (found.replica.inSync) return failure("failed_precondition", "nodeId", `node ${p.nodeId}'s replica of image "${found.image.name}" is in sync; nothing to heal`);
    ctx.prepare(setReplica).run(0, found.replica.fullHeal ? 1 : 0, p.doneBytes, p.totalBytes, found.replica.reason, p.id, p.nodeId);
    return { ok: true };
  },
};

export const writerCommands: StateModule["commands"] = {
  "storage.image.acquireWriter": acquireWriter, "storage.image.releaseWriter": releaseWriter,
  "storage.image.replicaOutOfSync": replicaOutOfSync, "storage.image.replicaInSync": replicaInSync, "storage.image.healProgress": healProgress,
};
