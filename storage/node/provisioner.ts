// The storage agent's file work on one node, level-triggered from the replicated state: makes
// the brick directories of the volumes that have a brick here, creates each image's sparse file
// (qcow2 images are formatted by qemu-img, whose output for a given size is byte-identical on
// every node, so fresh replicas agree), grows files when an image grows, removes the files of
// images and volumes that are gone, and reports each brick's capacity and use through Raft.
import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../../core/raft/types.ts";
import type { ImageRecord, VolumeRecord } from "../volume/model.ts";
import { brickDir, imageFileBytes, imageFileName, imageFilePattern, imageFilePath, imagesDirName } from "./layout.ts";

export const provisionerDefaults = {
  qemuImgTimeoutMs: 30_000,
  /** A brick's figures are re-reported when they move by this much, or after reportIntervalMs. */
  reportDeltaBytes: 64 * 1024 * 1024,
  reportIntervalMs: 30_000,
} as const;

export interface BrickReport {
  volumeId: string;
  nodeId: number;
  capacityBytes: number;
  usedBytes: number;
}

export interface ProvisionerOptions {
  nodeId: number;
  dataDir: string;
  log: Logger;
  /** Proposes storage.brick.report. */
  report: (r: BrickReport) => Promise<void>;
  nowMs?: () => number;
}

interface Reported {
  capacityBytes: number;
  usedBytes: number;
  atMs: number;
}

export class Provisioner {
  private readonly reported = new Map<string, Reported>();
  /** Images whose file this node made or checked at that size. */
  private readonly ready = new Map<string, number>();
  private readonly nowMs: () => number;

  constructor(private readonly o: ProvisionerOptions) {
    this.nowMs = o.nowMs ?? (() => Date.now());
  }

  /** One pass: returns the path of every image file present on this node, by image id. */
  async sync(volumes: readonly VolumeRecord[], images: readonly ImageRecord[]): Promise<Map<string, string>> {
    const files = new Map<string, string>();
    for (const v of volumes) {
      const brick = v.bricks.find((b) => b.nodeId === this.o.nodeId);
      if (!brick) continue;
      const dir = brickDir(this.o.dataDir, v, brick);
      await fs.mkdir(join(dir, imagesDirName), { recursive: true });
      const mine = images.filter((i) => i.volumeId === v.id && i.replicas.some((r) => r.nodeId === this.o.nodeId));
      for (const image of mine) {
        const path = imageFilePath(dir, image);
        try {
          await this.ensureFile(image, path);
          files.set(image.id, path);
        } catch (err) {
          this.o.log.warn("cannot provision image file", { image: image.id, volume: v.name, path, error: (err as Error).message });
        }
      }
      await this.removeStale(join(dir, imagesDirName), new Set(mine.map(imageFileName)));
      await this.maybeReport(v.id, dir);
    }
    return files;
  }

  private async ensureFile(image: ImageRecord, path: string): Promise<void> {
    const bytes = imageFileBytes(image);
    if (this.ready.get(image.id) === bytes) return;
    const st = await fs.stat(path).catch(() => null);
    if (st === null) {
      if (image.format === "qcow2") await this.qcow2Create(path, image.sizeBytes);
      const fh = await fs.open(path, image.format === "raw" ? "wx" : "r+");
      try {
        await fh.truncate(bytes);
        await fh.sync();
      } finally {
        await fh.close();
      }
    } else if (st.size < bytes) {
      // Grown online: the coordinator grows open copies itself; this covers closed ones.
      await fs.truncate(path, bytes);
    }
    this.ready.set(image.id, bytes);
  }

  private qcow2Create(path: string, sizeBytes: number): Promise<void> {
    const args = ["create", "-q", "-f", "qcow2", path, String(sizeBytes)];
    return new Promise((resolve, reject) =>
      execFile("qemu-img", args, { timeout: provisionerDefaults.qemuImgTimeoutMs }, (err, _out, stderr) =>
        err === null ? resolve() : reject(new Error(`qemu-img create ${path}: ${String(stderr).trim() || err.message}`, { cause: err })),
      ),
    );
  }

  /** Removes image files (and their epoch files) of images that are no longer in the state. */
  private async removeStale(dir: string, keep: Set<string>): Promise<void> {
    for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
      const m = imageFilePattern.exec(name);
      if (!m) continue;
      const base = `${m[1]}.${m[2]}`;
      if (keep.has(base)) continue;
      await fs.rm(join(dir, name), { force: true });
      this.ready.delete(m[1]!);
      this.o.log.info("removed the file of a deleted image", { image: m[1], path: join(dir, name) });
    }
  }

  private async maybeReport(volumeId: string, dir: string): Promise<void> {
    const s = await fs.statfs(dir);
    const capacityBytes = s.blocks * s.bsize;
    const usedBytes = (s.blocks - s.bfree) * s.bsize;
    const last = this.reported.get(volumeId);
    const now = this.nowMs();
    const moved = last === undefined || Math.abs(last.usedBytes - usedBytes) >= provisionerDefaults.reportDeltaBytes || last.capacityBytes !== capacityBytes;
    if (!moved && now - last.atMs < provisionerDefaults.reportIntervalMs) return;
    await this.o.report({ volumeId, nodeId: this.o.nodeId, capacityBytes, usedBytes });
    this.reported.set(volumeId, { capacityBytes, usedBytes, atMs: now });
  }
}
