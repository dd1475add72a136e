// How the storage pages read the API's volumes and images: byte sizes, a volume's use summed over
// its bricks, an image's replica health ("3/3 in sync", "2/3 — healing 45%"), whether a heal is
// running, and the size and name of an uploaded ISO. Pure, so what a user reads is tested
// without a browser.
import type { Brick, Image, ImageReplica, Volume } from "../api/types.ts";

/** Images are sized in whole sectors (storage/volume/model.ts imageSectorBytes). */
export const imageSectorBytes = 512;
/** Image names: 1 to 128 of a-z, 0-9, ".", "_", "-", starting and ending with a letter or digit. */
export const imageNameCharsMax = 128;

const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"] as const;

/** "0 B", "512 B", "1.5 KiB", "20 GiB": binary units, 3 significant digits at most. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return "unknown";
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  const text = u === 0 ? String(v) : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  return `${text.replace(/\.0+$|(\.\d*[1-9])0+$/, "$1")} ${units[u]}`;
}

export interface Use {
  usedBytes: number;
  capacityBytes: number;
  /** Bricks whose agent has reported; the others count for nothing yet. */
  reported: number;
  bricks: number;
}

/** A volume's use: the sum over its reported bricks (each holds a full copy of every image). */
export function brickUse(bricks: readonly Brick[]): Use {
  let usedBytes = 0, capacityBytes = 0, reported = 0;
  for (const b of bricks) {
    if (Number(b.reportedAtMs) === 0) continue;
    reported++;
    usedBytes += Number(b.usedBytes);
    capacityBytes += Number(b.capacityBytes);
  }
  return { usedBytes, capacityBytes, reported, bricks: bricks.length };
}

/**
 * The file systems under the reported bricks: the agents report the brick directory's file system
 * (statfs), so the bricks of several volumes on one node usually share one. Counted once per node
 * and capacity (two file systems of exactly the same size on one node are taken for one).
 */
function fileSystems(volumes: readonly Volume[]): { node: string; usedBytes: number; capacityBytes: number }[] {
  const seen = new Map<string, { node: string; usedBytes: number; capacityBytes: number }>();
  for (const v of volumes) {
    for (const b of v.bricks) {
      if (Number(b.reportedAtMs) === 0) continue;
      const fs = { node: b.nodeName, usedBytes: Number(b.usedBytes), capacityBytes: Number(b.capacityBytes) };
      const key = `${fs.node}/${fs.capacityBytes}`;
      // The later of two reports of one file system is as good: keep the larger use (the newer, mostly).
      if ((seen.get(key)?.usedBytes ?? -1) < fs.usedBytes) seen.set(key, fs);
    }
  }
  return [...seen.values()];
}

/** The cluster's storage: every file system under a brick, counted once. */
export function clusterUse(volumes: readonly Volume[]): Use {
  const all = fileSystems(volumes);
  const bricks = volumes.reduce((n, v) => n + v.bricks.length, 0);
  const reported = volumes.reduce((n, v) => n + v.bricks.filter((b) => Number(b.reportedAtMs) !== 0).length, 0);
  return {
    usedBytes: all.reduce((n, f) => n + f.usedBytes, 0), capacityBytes: all.reduce((n, f) => n + f.capacityBytes, 0), reported, bricks,
  };
}

/** Bytes used on each node's brick file systems (by node name). */
export function usedByNode(volumes: readonly Volume[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const f of fileSystems(volumes)) out[f.node] = (out[f.node] ?? 0) + f.usedBytes;
  return out;
}

/** "3", or "2 + arbiter" for a replica 2 + arbiter volume. */
export function replicasText(v: Pick<Volume, "replicaCount" | "arbiter">): string {
  return v.arbiter === true ? `${v.replicaCount} + arbiter` : String(v.replicaCount);
}

/** Percent used, 0..100 (0 when nothing is known). */
export function usedPercent(u: Use): number {
  if (u.capacityBytes <= 0) return 0;
  return Math.min(100, (100 * u.usedBytes) / u.capacityBytes);
}

/** How far a replica's heal has gone, 0..100; undefined when it is not healing. */
export function healPercent(r: ImageReplica): number | undefined {
  if (r.inSync) return undefined;
  const total = Number(r.healTotalBytes);
  if (total <= 0) return undefined;
  return Math.min(100, Math.floor((100 * Number(r.healDoneBytes)) / total));
}

export type HealthTone = "green" | "orange" | "red" | "grey";

/** "3/3 in sync", "2/3 — healing 45%", "2/3 in sync" (one out, not healing), "no replica". */
export function replicaHealth(image: Image): { text: string; tone: HealthTone } {
  const total = image.replicas.length;
  if (total === 0) return { text: "no replica", tone: "grey" };
  const inSync = image.replicas.filter((r) => r.inSync).length;
  if (inSync === total) return { text: `${inSync}/${total} in sync`, tone: "green" };
  const healing = image.replicas.map(healPercent).filter((p): p is number => p !== undefined);
  // Writes need a majority of the replicas in sync: below it the image is not writable.
  const tone: HealthTone = inSync * 2 > total ? "orange" : "red";
  if (healing.length === 0) return { text: `${inSync}/${total} in sync`, tone };
  return { text: `${inSync}/${total} — healing ${Math.min(...healing)}%`, tone };
}

/** A replica is being healed (so the page should follow it more closely than the slow poll). */
export function isHealing(images: readonly Image[]): boolean {
  return images.some((i) => i.replicas.some((r) => healPercent(r) !== undefined));
}

/** The size an uploaded file takes as an image: rounded up to whole sectors (at least one). */
export function imageSizeFor(fileBytes: number): number {
  return Math.max(imageSectorBytes, Math.ceil(fileBytes / imageSectorBytes) * imageSectorBytes);
}

/** An image name from a file name ("Debian 12.7 NetInst.ISO" → "debian-12.7-netinst.iso"); "" if nothing is left. */
export function imageNameFor(fileName: string): string {
  const base = fileName.split(/[\\/]/).pop() ?? "";
  const name = base.toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, "");
  return name.slice(0, imageNameCharsMax).replace(/[^a-z0-9]+$/, "");
}

/** "512 MiB" style sizes typed by a user, in bytes; undefined when not a size. Units are binary. */
export function parseSize(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text);
  if (!m) return undefined;
  const power = { "": 0, k: 1, m: 2, g: 3, t: 4 }[m[2]!.toLowerCase() as "" | "k" | "m" | "g" | "t"];
  const bytes = Number(m[1]) * 1024 ** power;
  return Number.isFinite(bytes) ? Math.round(bytes) : undefined;
}

/** The kinds listed in the ISO library tab. */
export const isLibraryImage = (i: Image): boolean => i.kind === "iso" || i.kind === "template";
