// The storage events of the node's event stream, derived by diffing two readings of the
// replicated storage records: `storage.image` (created, ready, deleted), `storage.replica` (a
// replica fell out of sync, with the reason, or came back in sync) and `storage.heal` (progress of
// an out-of-sync replica, at most one event per replica every healEventIntervalMs). A pure object:
// the caller reads the records and passes the time, so the diffing is tested without a cluster.
// "ready" follows "created" for an image created ready, so a watcher has one signal for "usable".
// Changes that come and go between two readings are not seen: like every consumer of the state,
// a watcher must not depend on seeing each transition (DESIGN.md, "Data flows one way").
import type { ImageRecord, ReplicaRecord } from "./model.ts";

/** What one reading holds: the images (with their replicas) and the names to show them by. */
export interface StorageView {
  images: readonly ImageRecord[];
  volumeNames: ReadonlyMap<string, string>;
  nodeNames: ReadonlyMap<number, string>;
}

export interface StorageEvent {
  kind: "storage.image" | "storage.replica" | "storage.heal";
  /** "image/<volume>/<image>", the object the ImageService audits under. */
  object: string;
  message: string;
  fields: Record<string, string>;
}

/** A heal reports every 2 s (storage/replication/heal.ts); this bounds the events if one reports faster. */
export const healEventIntervalMsDefault = 1_000;

interface HealSeen { atMs: number; doneBytes: number; totalBytes: number }

function mib(bytes: number): string {
  return `${(bytes / 1024 ** 2).toFixed(1).replace(/\.0$/, "")} MiB`;
}

export class StorageEventDiff {
  private images?: Map<string, ImageRecord>;
  private names = new Map<string, { volume: string; image: string }>();
  /** The last heal progress published per "<imageId>/<nodeId>". */
  private readonly heal = new Map<string, HealSeen>();

  constructor(private readonly healEventIntervalMs = healEventIntervalMsDefault) {}

  /** Whether a heal progress was held back by the throttle (the next step may publish it). */
  get pending(): boolean {
    if (!this.images) return false;
    for (const image of this.images.values()) {
      for (const r of image.replicas) {
        const seen = this.heal.get(`${image.id}/${r.nodeId}`);
        if (!r.inSync && r.healTotalBytes > 0 && seen && (seen.doneBytes !== r.healDoneBytes || seen.totalBytes !== r.healTotalBytes)) return true;
      }
    }
    return false;
  }

  /** The events between the previous reading and this one; the first reading only sets the baseline. */
  step(view: StorageView, nowMs: number): StorageEvent[] {
    const previous = this.images;
    const next = new Map(view.images.map((i) => [i.id, i]));
    this.images = next;
    if (!previous) {
      for (const i of view.images) this.baseline(i, view, nowMs);
      return [];
    }
    const out: StorageEvent[] = [];
    for (const image of view.images) {
      const before = previous.get(image.id);
      const ref = this.remember(image, view);
      if (!before) out.push(imageEvent("created", image, ref, `image ${ref.volume}/${ref.image} created (${image.kind}, ${mib(image.sizeBytes)}, ${image.state})`));
      // Every image that becomes usable gets its "ready", also one created ready or uploaded between two readings.
      if ((before?.state ?? "uploading") === "uploading" && image.state === "ready") out.push(imageEvent("ready", image, ref, `image ${ref.volume}/${ref.image} is ready`));
      for (const r of image.replicas) this.replicaEvents(out, image, ref, r, before?.replicas.find((b) => b.nodeId === r.nodeId), view, nowMs);
    }
    for (const [id, before] of previous) {
      if (next.has(id)) continue;
      const ref = this.names.get(id) ?? { volume: before.volumeId, image: before.name };
      out.push(imageEvent("deleted", before, ref, `image ${ref.volume}/${ref.image} deleted`));
      this.names.delete(id);
      for (const r of before.replicas) this.heal.delete(`${id}/${r.nodeId}`);
    }
    return out;
  }

  private baseline(image: ImageRecord, view: StorageView, nowMs: number): void {
    this.remember(image, view);
    for (const r of image.replicas) {
      if (!r.inSync) this.heal.set(`${image.id}/${r.nodeId}`, { atMs: nowMs, doneBytes: r.healDoneBytes, totalBytes: r.healTotalBytes });
    }
  }

  /** Names are kept so a deleted image is still named by its volume (which may be gone too). */
  private remember(image: ImageRecord, view: StorageView): { volume: string; image: string } {
    const ref = { volume: view.volumeNames.get(image.volumeId) ?? this.names.get(image.id)?.volume ?? image.volumeId, image: image.name };
    this.names.set(image.id, ref);
    return ref;
  }

  private replicaEvents(out: StorageEvent[], image: ImageRecord, ref: { volume: string; image: string }, r: ReplicaRecord, before: ReplicaRecord | undefined, view: StorageView, nowMs: number): void {
    const key = `${image.id}/${r.nodeId}`;
    const node = view.nodeNames.get(r.nodeId) ?? String(r.nodeId);
    const fields = { volume: ref.volume, image: ref.image, imageId: image.id, node, nodeId: String(r.nodeId), generation: String(image.generation) };
    const wasInSync = before?.inSync ?? true;
    if (wasInSync && !r.inSync) {
      const reason = r.reason || "unknown reason";
      out.push({ kind: "storage.replica", object: objectOf(ref), message: `replica of image ${ref.volume}/${ref.image} on node ${node} is out of sync: ${reason}`, fields: { ...fields, inSync: "false", reason, fullHeal: String(r.fullHeal) } });
      // A fresh heal publishes its first progress at once.
      this.heal.set(key, { atMs: -Infinity, doneBytes: 0, totalBytes: 0 });
    } else if (!wasInSync && r.inSync) {
      out.push({ kind: "storage.replica", object: objectOf(ref), message: `replica of image ${ref.volume}/${ref.image} on node ${node} is back in sync`, fields: { ...fields, inSync: "true", reason: "", fullHeal: "false" } });
      this.heal.delete(key);
      return;
    }
    if (r.inSync) return;
    const seen = this.heal.get(key) ?? { atMs: -Infinity, doneBytes: 0, totalBytes: 0 };
    if (r.healTotalBytes === 0 || (seen.doneBytes === r.healDoneBytes && seen.totalBytes === r.healTotalBytes)) return;
    if (nowMs - seen.atMs < this.healEventIntervalMs) return;
    this.heal.set(key, { atMs: nowMs, doneBytes: r.healDoneBytes, totalBytes: r.healTotalBytes });
    const percent = Math.floor((r.healDoneBytes * 100) / r.healTotalBytes);
    out.push({
      kind: "storage.heal", object: objectOf(ref),
      message: `healing the replica of image ${ref.volume}/${ref.image} on node ${node}: ${mib(r.healDoneBytes)} of ${mib(r.healTotalBytes)} (${percent}%)`,
      fields: { ...fields, doneBytes: String(r.healDoneBytes), totalBytes: String(r.healTotalBytes), percent: String(percent), fullHeal: String(r.fullHeal) },
    });
  }
}

function objectOf(ref: { volume: string; image: string }): string {
  return `image/${ref.volume}/${ref.image}`;
}

function imageEvent(change: "created" | "ready" | "deleted", i: ImageRecord, ref: { volume: string; image: string }, message: string): StorageEvent {
  return {
    kind: "storage.image", object: objectOf(ref), message,
    fields: { change, volume: ref.volume, image: ref.image, imageId: i.id, kind: i.kind, format: i.format, sizeBytes: String(i.sizeBytes), state: change === "deleted" ? "deleted" : i.state },
  };
}
