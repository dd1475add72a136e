// State module "storage" (migrations 7 and 8): volumes and their bricks, images and their
// replicas, and the commands that move an image's writer epoch and replica set
// (storage-writer.ts). Those are the safety core of replication: a replica leaves the in-sync set
// only through a committed command of the current writer epoch, and never below the write quorum
// (a majority, or one copy with an arbiter: model.ts), so an acknowledged write is always on
// every replica the state calls in sync. Apply reads only the payload and the database (ids and
// times come from the proposer), so every node computes the same result.
import type { CommandSpec, StateModule } from "../../core/state/modules.ts";
import {
  arbiterReplicaCount, checkBrickPath, checkImageName, checkImageSize, checkKindFormat, checkNodeId, checkNonNegative, checkOneOf, checkReplicaCount, checkUuid,
  checkVolumeName, imageFormats, imageKinds, imageStates, StorageFieldError,
  type ImageFormat, type ImageKind, type ImageState,
} from "./model.ts";
import { checked, failure, fields, imageOr, isFailure } from "./payload.ts";
import { getVolume } from "./storage-queries.ts";
import { writerCommands } from "./storage-writer.ts";
import { listVms } from "../../core/vm/vm-queries.ts";
import { imageUsers } from "../../core/vm/vm-volumes.ts";

export { getImage, getImageByName, getVolume, getVolumeByName, listImages, listImagesOnNode, listVolumes } from "./storage-queries.ts";

export interface VolumeCreatePayload { id: string; name: string; replicaCount: number; arbiter: boolean; bricks: Array<{ nodeId: number; path: string }> }

const volumeCreate: CommandSpec<VolumeCreatePayload> = {
  validate(payload) {
    const cmd = "storage.volume.create";
    const p = fields(cmd, payload);
    return checked(cmd, () => {
      const replicaCount = checkReplicaCount("replicaCount", p.replicaCount);
      if (!Array.isArray(p.bricks) || p.bricks.length !== replicaCount) throw new StorageFieldError("bricks", `must list one brick per replica (${replicaCount})`);
      const bricks = p.bricks.map((b: unknown, i) => {
        const o = fields(cmd, b);
        return { nodeId: checkNodeId(`bricks[${i}].nodeId`, o.nodeId), path: checkBrickPath(`bricks[${i}].path`, o.path ?? "") };
      });
      if (new Set(bricks.map((b) => b.nodeId)).size !== bricks.length) throw new StorageFieldError("bricks", "must be on distinct nodes (one brick per node)");
      const arbiter = p.arbiter ?? false;
      if (typeof arbiter !== "boolean") throw new StorageFieldError("arbiter", "must be true or false");
      if (arbiter && replicaCount !== arbiterReplicaCount) throw new StorageFieldError("arbiter", `goes with replicaCount ${arbiterReplicaCount} only (got ${replicaCount})`);
      return { id: checkUuid("id", p.id), name: checkVolumeName("name", p.name), replicaCount, arbiter, bricks };
    });
  },
  apply(ctx, p) {
    if (ctx.prepare("SELECT 1 FROM storage_volumes WHERE name = ?").get(p.name)) return failure("already_exists", "name", `a volume named "${p.name}" already exists`);
    if (ctx.prepare("SELECT 1 FROM storage_volumes WHERE id = ?").get(p.id)) return failure("already_exists", "id", `volume ${p.id} already exists`);
    for (const b of p.bricks) {
      if (!ctx.prepare("SELECT 1 FROM nodes WHERE id = ?").get(b.nodeId)) return failure("not_found", "bricks", `node ${b.nodeId} is not a member of the cluster`);
    }
    ctx.prepare("INSERT INTO storage_volumes (id, name, replica_count, arbiter, created_at_ms) VALUES (?, ?, ?, ?, ?)").run(p.id, p.name, p.replicaCount, p.arbiter ? 1 : 0, ctx.atMs);
    const brick = ctx.prepare("INSERT INTO storage_bricks (volume_id, node_id, path, capacity_bytes, used_bytes, reported_at_ms) VALUES (?, ?, ?, 0, 0, 0)");
    for (const b of p.bricks) brick.run(p.id, b.nodeId, b.path);
    return { ok: true, id: p.id };
  },
};

const volumeDelete: CommandSpec<{ id: string }> = {
  validate: (payload) => ({ id: checked("storage.volume.delete", () => checkUuid("id", fields("storage.volume.delete", payload).id)) }),
  apply(ctx, p) {
    const volume = getVolume(ctx.db, p.id);
    if (!volume) return failure("not_found", "id", `volume ${p.id} does not exist`);
    const images = ctx.prepare("SELECT count(*) FROM storage_images WHERE volume_id = ?").pluck().get(p.id) as number;
    if (images > 0) return failure("failed_precondition", "name", `volume "${volume.name}" still has ${images} image(s); delete them first`);
    ctx.prepare("DELETE FROM storage_bricks WHERE volume_id = ?").run(p.id);
    ctx.prepare("DELETE FROM storage_volumes WHERE id = ?").run(p.id);
    return { ok: true, deleted: true };
  },
};

const brickReport: CommandSpec<{ volumeId: string; nodeId: number; capacityBytes: number; usedBytes: number }> = {
  validate(payload) {
    const p = fields("storage.brick.report", payload);
    return checked("storage.brick.report", () => ({
      volumeId: checkUuid("volumeId", p.volumeId), nodeId: checkNodeId("nodeId", p.nodeId),
      capacityBytes: checkNonNegative("capacityBytes", p.capacityBytes), usedBytes: checkNonNegative("usedBytes", p.usedBytes),
    }));
  },
  apply(ctx, p) {
    const changed = ctx.prepare("UPDATE storage_bricks SET capacity_bytes = ?, used_bytes = ?, reported_at_ms = ? WHERE volume_id = ? AND node_id = ?")
      .run(p.capacityBytes, p.usedBytes, ctx.atMs, p.volumeId, p.nodeId).changes;
    return changed > 0 ? { ok: true } : failure("not_found", "volumeId", `volume ${p.volumeId} has no brick on node ${p.nodeId}`);
  },
};

export interface ImageCreatePayload { id: string; volumeId: string; name: string; kind: ImageKind; format: ImageFormat; sizeBytes: number; state: ImageState }

const imageCreate: CommandSpec<ImageCreatePayload> = {
  validate(payload) {
    const p = fields("storage.image.create", payload);
    return checked("storage.image.create", () => {
      const kind = checkOneOf("kind", p.kind ?? "disk", imageKinds);
      const format = checkOneOf("format", p.format ?? "raw", imageFormats);
      checkKindFormat(kind, format);
      return {
        id: checkUuid("id", p.id), volumeId: checkUuid("volumeId", p.volumeId), name: checkImageName("name", p.name), kind, format,
        sizeBytes: checkImageSize("sizeBytes", p.sizeBytes), state: checkOneOf("state", p.state ?? "ready", imageStates),
      };
    });
  },
  apply(ctx, p) {
    const volume = getVolume(ctx.db, p.volumeId);
    if (!volume) return failure("not_found", "volume", `volume ${p.volumeId} does not exist`);
    if (ctx.prepare("SELECT 1 FROM storage_images WHERE volume_id = ? AND name = ?").get(p.volumeId, p.name)) {
      return failure("already_exists", "name", `volume "${volume.name}" already has an image named "${p.name}"`);
    }
    if (ctx.prepare("SELECT 1 FROM storage_images WHERE id = ?").get(p.id)) return failure("already_exists", "id", `image ${p.id} already exists`);
    ctx.prepare(`INSERT INTO storage_images (id, volume_id, name, kind, format, size_bytes, state, generation, writer_epoch, writer_node_id, writer_clean, created_at_ms)
      VALUES (?, ?, ?, ?, ?, ?, ?, 1, 0, NULL, 1, ?)`).run(p.id, p.volumeId, p.name, p.kind, p.format, p.sizeBytes, p.state, ctx.atMs);
    // Every replica starts in sync: all are the same empty sparse file.
    const replica = ctx.prepare("INSERT INTO storage_replicas (image_id, node_id, in_sync, full_heal, heal_done_bytes, heal_total_bytes) VALUES (?, ?, 1, 0, 0, 0)");
    for (const b of volume.bricks) replica.run(p.id, b.nodeId);
    return { ok: true, id: p.id };
  },
};

const imageResize: CommandSpec<{ id: string; sizeBytes: number }> = {
  validate(payload) {
    const p = fields("storage.image.resize", payload);
    return checked("storage.image.resize", () => ({ id: checkUuid("id", p.id), sizeBytes: checkImageSize("sizeBytes", p.sizeBytes) }));
  },
  apply(ctx, p) {
    const image = imageOr(ctx, p.id);
    if (isFailure(image)) return image;
    if (p.sizeBytes < image.sizeBytes) return failure("invalid_argument", "size_bytes", `image "${image.name}" is ${image.sizeBytes} bytes; it can only grow (shrinking would cut off its data)`);
    ctx.prepare("UPDATE storage_images SET size_bytes = ? WHERE id = ?").run(p.sizeBytes, p.id);
    return { ok: true, sizeBytes: p.sizeBytes, previousSizeBytes: image.sizeBytes };
  },
};

const imageDelete: CommandSpec<{ id: string }> = {
  validate: (payload) => ({ id: checked("storage.image.delete", () => checkUuid("id", fields("storage.image.delete", payload).id)) }),
  apply(ctx, p) {
    const image = imageOr(ctx, p.id);
    if (isFailure(image)) return image;
    if (image.writerNodeId !== null) return failure("failed_precondition", "name", `image "${image.name}" is open for writing on node ${image.writerNodeId}; close it first`);
    const volume = getVolume(ctx.db, image.volumeId);
    const user = volume ? imageUsers(listVms(ctx.db)).get(`${volume.name}/${image.name}`) : undefined;
    if (user !== undefined) return failure("failed_precondition", "name", `image "${image.name}" is used by VM "${user}"; detach it from the VM or delete the VM first`);
    ctx.prepare("DELETE FROM storage_replicas WHERE image_id = ?").run(p.id);
    ctx.prepare("DELETE FROM storage_images WHERE id = ?").run(p.id);
    return { ok: true, deleted: true };
  },
};

const imageSetState: CommandSpec<{ id: string; state: ImageState }> = {
  validate(payload) {
    const p = fields("storage.image.setState", payload);
    return checked("storage.image.setState", () => ({ id: checkUuid("id", p.id), state: checkOneOf("state", p.state, imageStates) }));
  },
  apply(ctx, p) {
    const changed = ctx.prepare("UPDATE storage_images SET state = ? WHERE id = ?").run(p.state, p.id).changes;
    return changed > 0 ? { ok: true } : failure("not_found", "id", `image ${p.id} does not exist`);
  },
};

export const storageModule: StateModule = {
  name: "storage",
  migrations: [
    {
      version: 7,
      name: "storage volumes, bricks, images, replicas",
      sql: `CREATE TABLE storage_volumes (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, replica_count INTEGER NOT NULL, created_at_ms INTEGER NOT NULL);
CREATE TABLE storage_bricks (volume_id TEXT NOT NULL, node_id INTEGER NOT NULL, path TEXT NOT NULL, capacity_bytes INTEGER NOT NULL,
  used_bytes INTEGER NOT NULL, reported_at_ms INTEGER NOT NULL, PRIMARY KEY (volume_id, node_id)) WITHOUT ROWID;
CREATE TABLE storage_images (id TEXT PRIMARY KEY, volume_id TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL, format TEXT NOT NULL,
  size_bytes INTEGER NOT NULL, state TEXT NOT NULL, generation INTEGER NOT NULL, writer_epoch INTEGER NOT NULL, writer_node_id INTEGER,
  writer_clean INTEGER NOT NULL, created_at_ms INTEGER NOT NULL, UNIQUE (volume_id, name));
CREATE TABLE storage_replicas (image_id TEXT NOT NULL, node_id INTEGER NOT NULL, in_sync INTEGER NOT NULL, full_heal INTEGER NOT NULL,
  heal_done_bytes INTEGER NOT NULL, heal_total_bytes INTEGER NOT NULL, reason TEXT NOT NULL DEFAULT '', PRIMARY KEY (image_id, node_id)) WITHOUT ROWID;
CREATE INDEX storage_replicas_node ON storage_replicas (node_id);`,
    },
    {
      version: 8,
      name: "storage volume arbiter",
      sql: "ALTER TABLE storage_volumes ADD COLUMN arbiter INTEGER NOT NULL DEFAULT 0;",
    },
    {
      version: 9,
      name: "storage replica dirty ranges kept across a clean writer release",
      sql: "ALTER TABLE storage_replicas ADD COLUMN dirty_ranges TEXT;",
    },
  ],
  commands: {
    "storage.volume.create": volumeCreate, "storage.volume.delete": volumeDelete, "storage.brick.report": brickReport,
    "storage.image.create": imageCreate, "storage.image.resize": imageResize, "storage.image.delete": imageDelete, "storage.image.setState": imageSetState,
    ...writerCommands,
  },
};
