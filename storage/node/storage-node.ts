// The volume layer on one node, as the daemon runs it: the replication server for the bricks
// here (remote coordinators reach it over the node-to-node port), the NBD server on
// <dataDir>/run/nbd.sock exporting every image that has a copy here as "<volume>/<image>", and
// a level-triggered loop that provisions brick files, keeps the export table in step with the
// replicated state, and coordinates idle images that need a heal (the lowest-numbered node with
// an in-sync copy does it, so exactly one node tries).
import { mkdirSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Duplex } from "node:stream";
import type Database from "better-sqlite3";
import type { Logger } from "../../core/raft/types.ts";
import type { CommandResult } from "../../core/state/apply.ts";
import { NbdServer } from "../nbd/server.ts";
import { ImageTable, fileEpochStore, openFileBrickImage, type ResolvedImage } from "../replication/image-table.ts";
import { ReplicaClient } from "../replication/replica-client.ts";
import { ReplicaServer } from "../replication/replica-server.ts";
import type { Pacing } from "../replication/throttle.ts";
import { verifyDefaults, verifyReplicas, type VerifyReplica } from "../replication/verify.ts";
import type { ImageRecord, VolumeRecord } from "../volume/model.ts";
import { getImage, getVolume, listImages, listVolumes } from "../volume/storage-queries.ts";
import { CoordinatedImage } from "./coordinator.ts";
import { brickDir, exportName, imageFileBytes, imageFilePath, imagesDirName, nbdSocketPath } from "./layout.ts";
import { LocalBrickReplica } from "./local-brick.ts";
import { Provisioner } from "./provisioner.ts";

export const storageNodeDefaults = {
  syncIntervalMs: 1_000,
  verifyTimeoutMs: 10_000,
  /** An upload that sends no chunk for this long lets go of its image. */
  uploadIdleMs: 5 * 60_000,
} as const;

export interface StorageNodeOptions {
  nodeId: number;
  dataDir: string;
  log: Logger;
  /** Runs a read on the local replica's state database. */
  read<T>(fn: (db: Database.Database) => T): T;
  execute(name: string, payload: Record<string, unknown>): Promise<CommandResult>;
  connect(nodeId: number): Promise<Duplex>;
}

const realPacing: Pacing = {
  nowMs: () => performance.now(),
  sleep: (ms, signal) =>
    new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      signal?.addEventListener("abort", () => {
        clearTimeout(t);
        resolve();
      }, { once: true });
    }),
};

export class StorageNode {
  readonly nbd: NbdServer;
  readonly replicas: ReplicaServer;
  private readonly table: ImageTable;
  private readonly provisioner: Provisioner;
  private readonly exported = new Map<string, { image: CoordinatedImage; name: string }>();
  /** Image files present here, by image id (the replication server opens only these). */
  private files = new Map<string, string>();
  private timer: NodeJS.Timeout | null = null;
  /** Idle images this node opened to heal them, by image id. */
  private readonly healHolds = new Set<string>();
  /** Uploads holding their image open, by image id → the idle timer that lets it go. */
  private readonly uploads = new Map<string, NodeJS.Timeout>();
  private syncing = false;

  constructor(private readonly o: StorageNodeOptions) {
    this.table = new ImageTable((id) => this.resolveImage(id), openFileBrickImage, fileEpochStore);
    this.replicas = new ReplicaServer({ images: this.table, resolveImage: () => undefined, log: o.log });
    this.nbd = new NbdServer({ socketPath: nbdSocketPath(o.dataDir), log: o.log });
    this.provisioner = new Provisioner({
      nodeId: o.nodeId, dataDir: o.dataDir, log: o.log,
      report: async (r) => {
        const res = await o.execute("storage.brick.report", { ...r });
        if (!res.ok) o.log.debug("brick report refused", { volume: r.volumeId, error: res.message });
      },
    });
  }

  async start(): Promise<void> {
    await mkdir(dirname(nbdSocketPath(this.o.dataDir)), { recursive: true, mode: 0o700 });
    await this.nbd.listen();
    await this.sync();
    this.timer = setInterval(() => void this.sync(), storageNodeDefaults.syncIntervalMs);
  }

  /**
   * The file of an image on this node's brick, for the replication server (image ids arrive
   * from the network: only ids of images in the replicated state resolve). A raw image whose
   * file the provisioner has not made yet (a coordinator opened it right after creation) is
   * resolved from the state, and its file is created sparse on open.
   */
  private resolveImage(id: string): ResolvedImage | undefined {
    const known = this.files.get(id);
    if (known !== undefined) return { path: known, format: known.endsWith(".qcow2") ? "qcow2" : "raw" };
    const found = this.o.read((db) => {
      const image = getImage(db, id);
      return image ? { image, volume: getVolume(db, image.volumeId) } : null;
    });
    if (!found?.volume || found.image.format !== "raw") return undefined;
    const brick = found.volume.bricks.find((b) => b.nodeId === this.o.nodeId);
    if (!brick) return undefined;
    const dir = brickDir(this.o.dataDir, found.volume, brick);
    mkdirSync(join(dir, imagesDirName), { recursive: true });
    return { path: imageFilePath(dir, found.image), format: "raw" };
  }

  /** Whether this node's NBD server exports "<volume>/<image>" (its file is made). */
  hasExport(name: string): boolean {
    for (const e of this.exported.values()) if (e.name === name) return true;
    return false;
  }

  /** Serves one replication connection from another node's coordinator. */
  serveReplication(stream: Duplex): void {
    this.replicas.serve(stream);
  }

  private async sync(): Promise<void> {
    if (this.syncing) return;
    this.syncing = true;
    try {
      const { volumes, images } = this.o.read((db) => ({ volumes: listVolumes(db), images: listImages(db) }));
      this.files = await this.provisioner.sync(volumes, images);
      this.syncExports(volumes, images);
      this.healIdle(images);
    } catch (err) {
      this.o.log.warn("storage sync failed", { error: String(err) });
    } finally {
      this.syncing = false;
    }
  }

  private syncExports(volumes: readonly VolumeRecord[], images: readonly ImageRecord[]): void {
    const volumeNames = new Map(volumes.map((v) => [v.id, v.name]));
    const wanted = new Set<string>();
    for (const image of images) {
      const volume = volumeNames.get(image.volumeId);
      if (volume === undefined || !this.files.has(image.id)) continue;
      wanted.add(image.id);
      const name = exportName({ name: volume }, image);
      const existing = this.exported.get(image.id);
      if (existing) {
        existing.image.setFileBytes(imageFileBytes(image));
        continue;
      }
      const coordinated = new CoordinatedImage({
        nodeId: this.o.nodeId, log: this.o.log, table: this.table, pacing: realPacing,
        record: (id) => this.o.read((db) => getImage(db, id)),
        execute: this.o.execute, connect: this.o.connect,
      }, image.id, name, imageFileBytes(image));
      this.nbd.addExport(name, () => coordinated.view());
      this.exported.set(image.id, { image: coordinated, name });
    }
    for (const [id, e] of this.exported) {
      if (wanted.has(id)) continue;
      this.nbd.removeExport(e.name);
      this.exported.delete(id);
      void e.image.close();
    }
  }

  /**
   * An image that nobody has open but that has replicas out of sync: the lowest-numbered node
   * holding an in-sync copy opens it (taking the epoch) so its heal loop runs, and lets it go
   * once every replica is back in sync.
   */
  private healIdle(images: readonly ImageRecord[]): void {
    for (const image of images) {
      const e = this.exported.get(image.id);
      if (!e) continue;
      const behind = image.replicas.some((r) => !r.inSync);
      const healer = image.replicas.filter((r) => r.inSync).map((r) => r.nodeId).sort((a, b) => a - b)[0];
      const mine = healer === this.o.nodeId;
      // Nobody writes it, or this node is named writer but has it closed (a close that could not
      // flush leaves the epoch held): either way this node may take it to heal.
      const free = image.writerNodeId === null || (image.writerNodeId === this.o.nodeId && !e.image.isOpen);
      if (behind && mine && free && !e.image.isOpen && !this.healHolds.has(image.id)) {
        this.healHolds.add(image.id);
        e.image.attach();
        this.o.log.info("opening an idle image to heal it", { image: e.name });
      } else if (!behind && this.healHolds.has(image.id)) {
        this.healHolds.delete(image.id);
        e.image.detach();
      }
    }
  }

  /**
   * Writes a chunk of an uploading image through this node's coordinator. The upload holds the
   * image open between chunks (released by finishContent, or after uploadIdleMs without one).
   */
  async writeContent(imageId: string, offset: number, data: Uint8Array): Promise<void> {
    const e = this.exportOf(imageId, "uploading to");
    this.holdForUpload(imageId, e.image);
    await e.image.write(offset, Buffer.from(data.buffer, data.byteOffset, data.byteLength), { fua: false });
  }

  async finishContent(imageId: string): Promise<void> {
    const e = this.exportOf(imageId, "finishing the upload of");
    this.holdForUpload(imageId, e.image);
    try {
      await e.image.flush();
    } finally {
      this.releaseUpload(imageId, e.image);
    }
  }

  private exportOf(imageId: string, doing: string) {
    const e = this.exported.get(imageId);
    if (!e) throw new Error(`${doing} image ${imageId}: this node holds no copy of it (or has not made its file yet); use a node with a brick of its volume`);
    return e;
  }

  private holdForUpload(imageId: string, image: CoordinatedImage): void {
    const held = this.uploads.get(imageId);
    if (held) clearTimeout(held);
    else image.attach();
    this.uploads.set(imageId, setTimeout(() => this.releaseUpload(imageId, image), storageNodeDefaults.uploadIdleMs));
  }

  private releaseUpload(imageId: string, image: CoordinatedImage): void {
    const held = this.uploads.get(imageId);
    if (!held) return;
    clearTimeout(held);
    this.uploads.delete(imageId);
    image.detach();
  }

  /** Compares per-chunk checksums of an image across its in-sync replicas (volume verify). */
  async verify(imageId: string): Promise<{ chunkBytes: number; replicas: { nodeId: number; ok: boolean; error: string }[]; mismatches: { offset: number; nodes: number[] }[] }> {
    const image = this.o.read((db) => getImage(db, imageId));
    if (image === null) throw new Error(`verifying image ${imageId}: no such image`);
    const bytes = imageFileBytes(image);
    const opened: { nodeId: number; target: VerifyReplica & { close(): Promise<void> } }[] = [];
    const replicas: { nodeId: number; ok: boolean; error: string }[] = [];
    for (const r of image.replicas.filter((x) => x.inSync)) {
      try {
        const target = r.nodeId === this.o.nodeId && this.files.has(imageId)
          ? await LocalBrickReplica.open(String(r.nodeId), this.table, imageId, image.writerEpoch, bytes)
          : new ReplicaClient({ nodeId: String(r.nodeId), imageId, epoch: image.writerEpoch, sizeBytes: bytes, connect: () => this.o.connect(r.nodeId), replicaTimeoutMs: storageNodeDefaults.verifyTimeoutMs });
        opened.push({ nodeId: r.nodeId, target });
        replicas.push({ nodeId: r.nodeId, ok: true, error: "" });
      } catch (err) {
        replicas.push({ nodeId: r.nodeId, ok: false, error: (err as Error).message });
      }
    }
    try {
      const report = await verifyReplicas({ imageId, sizeBytes: bytes, replicas: opened.map((x) => x.target) });
      const mismatches = report.mismatches.map((m) => {
        const digests = Object.entries(m.digests);
        const counts = new Map<string, number>();
        for (const [, d] of digests) counts.set(d, (counts.get(d) ?? 0) + 1);
        const majority = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
        return { offset: m.offset, nodes: digests.filter(([, d]) => d !== majority).map(([n]) => Number(n)) };
      });
      return { chunkBytes: verifyDefaults.chunkBytes, replicas, mismatches };
    } catch (err) {
      const failed = /node (\d+)/.exec((err as Error).message)?.[1];
      for (const r of replicas) if (String(r.nodeId) === failed) Object.assign(r, { ok: false, error: (err as Error).message });
      throw err;
    } finally {
      await Promise.allSettled(opened.map((x) => x.target.close()));
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    for (const t of this.uploads.values()) clearTimeout(t);
    for (const e of this.exported.values()) this.nbd.removeExport(e.name);
    await this.nbd.close();
    await Promise.allSettled([...this.exported.values()].map((e) => e.image.close()));
    await this.replicas.close();
    await this.table.closeAll();
  }
}
