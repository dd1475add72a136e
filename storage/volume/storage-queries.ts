// Reads of the storage tables (rows to records) for the API, the storage agents, the replication
// coordinator and the applies of storage-module.ts. Statements are cached per connection.
import type Database from "better-sqlite3";
import { prepared } from "../../core/state/modules.ts";
import type { BrickRecord, ImageFormat, ImageKind, ImageRecord, ImageState, ReplicaRecord, VolumeRecord } from "./model.ts";

interface VolumeRow { id: string; name: string; replica_count: number; arbiter: number; created_at_ms: number }
interface BrickRow { volume_id: string; node_id: number; path: string; capacity_bytes: number; used_bytes: number; reported_at_ms: number }
interface ImageRow {
  id: string; volume_id: string; name: string; kind: ImageKind; format: ImageFormat; size_bytes: number; state: ImageState;
  generation: number; writer_epoch: number; writer_node_id: number | null; writer_clean: number; created_at_ms: number;
}
interface ReplicaRow {
  image_id: string; node_id: number; in_sync: number; full_heal: number; heal_done_bytes: number; heal_total_bytes: number; reason: string;
  dirty_ranges: string | null;
}

function brickOfRow(r: BrickRow): BrickRecord {
  return { volumeId: r.volume_id, nodeId: r.node_id, path: r.path, capacityBytes: r.capacity_bytes, usedBytes: r.used_bytes, reportedAtMs: r.reported_at_ms };
}

function replicaOfRow(r: ReplicaRow): ReplicaRecord {
  return {
    nodeId: r.node_id, inSync: r.in_sync === 1, fullHeal: r.full_heal === 1, healDoneBytes: r.heal_done_bytes, healTotalBytes: r.heal_total_bytes, reason: r.reason,
    dirtyRanges: r.dirty_ranges === null ? null : (JSON.parse(r.dirty_ranges) as [number, number][]),
  };
}

function volumesOf(db: Database.Database, rows: VolumeRow[]): VolumeRecord[] {
  const bricks = prepared(db, "SELECT * FROM storage_bricks WHERE volume_id = ? ORDER BY node_id");
  return rows.map((r) => ({
    id: r.id, name: r.name, replicaCount: r.replica_count, arbiter: r.arbiter === 1, createdAtMs: r.created_at_ms,
    bricks: (bricks.all(r.id) as BrickRow[]).map(brickOfRow),
  }));
}

function imagesOf(db: Database.Database, rows: ImageRow[]): ImageRecord[] {
  const replicas = prepared(db, "SELECT * FROM storage_replicas WHERE image_id = ? ORDER BY node_id");
  return rows.map((r) => ({
    id: r.id, volumeId: r.volume_id, name: r.name, kind: r.kind, format: r.format, sizeBytes: r.size_bytes, state: r.state,
    generation: r.generation, writerEpoch: r.writer_epoch, writerNodeId: r.writer_node_id, writerClean: r.writer_clean === 1, createdAtMs: r.created_at_ms,
    replicas: (replicas.all(r.id) as ReplicaRow[]).map(replicaOfRow),
  }));
}

/** Every volume with its bricks, by name. */
export function listVolumes(db: Database.Database): VolumeRecord[] {
  return volumesOf(db, prepared(db, "SELECT * FROM storage_volumes ORDER BY name").all() as VolumeRow[]);
}

export function getVolume(db: Database.Database, id: string): VolumeRecord | null {
  return volumesOf(db, prepared(db, "SELECT * FROM storage_volumes WHERE id = ?").all(id) as VolumeRow[])[0] ?? null;
}

export function getVolumeByName(db: Database.Database, name: string): VolumeRecord | null {
  return volumesOf(db, prepared(db, "SELECT * FROM storage_volumes WHERE name = ?").all(name) as VolumeRow[])[0] ?? null;
}

/** Images with their replicas, all or one volume's, by volume id then name. */
export function listImages(db: Database.Database, volumeId?: string): ImageRecord[] {
  const rows = volumeId === undefined
    ? prepared(db, "SELECT * FROM storage_images ORDER BY volume_id, name").all()
    : prepared(db, "SELECT * FROM storage_images WHERE volume_id = ? ORDER BY name").all(volumeId);
  return imagesOf(db, rows as ImageRow[]);
}

export function getImage(db: Database.Database, id: string): ImageRecord | null {
  return imagesOf(db, prepared(db, "SELECT * FROM storage_images WHERE id = ?").all(id) as ImageRow[])[0] ?? null;
}

export function getImageByName(db: Database.Database, volumeName: string, imageName: string): ImageRecord | null {
  const rows = prepared(db, `SELECT i.* FROM storage_images i JOIN storage_volumes v ON v.id = i.volume_id
    WHERE v.name = ? AND i.name = ?`).all(volumeName, imageName) as ImageRow[];
  return imagesOf(db, rows)[0] ?? null;
}

/** Images with a replica on a node's brick (what that node's storage agent keeps files for). */
export function listImagesOnNode(db: Database.Database, nodeId: number): ImageRecord[] {
  const rows = prepared(db, `SELECT i.* FROM storage_images i JOIN storage_replicas r ON r.image_id = i.id
    WHERE r.node_id = ? ORDER BY i.volume_id, i.name`).all(nodeId) as ImageRow[];
  return imagesOf(db, rows);
}
