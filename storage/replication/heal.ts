// Heals one replica of an image from the coordinator's in-sync copy: either copies the regions
// of its dirty map, or (when those are unknown) compares per-chunk checksums of both copies and
// copies the chunks that differ. Throttled to bytesPerSec, reports progress, stops on abort. The
// caller has put the replica into "healing" (so new writes reach it too) and, when this
// resolves, marks it in sync (ReplicatedBackend.completeHeal with replicaInSync as commit).
import { digestAt } from "./checksums.ts";
import type { DirtyMap } from "./dirty-map.ts";
import { ReplicationError } from "./errors.ts";
import { protocolLimits } from "./protocol.ts";
import { Throttle } from "./throttle.ts";
import type { Pacing } from "./throttle.ts";

export const healDefaults = {
  chunkBytes: 1024 * 1024,
  /** Chunks compared per CHECKSUMS round trip. */
  compareWindowChunks: 64,
  /** Dirty-map passes before giving up (a pass only finds new bits if copies raced failures). */
  passesMax: 3,
} as const;

/** What heal needs from the coordinator (ReplicatedBackend has these). */
export interface HealAccess {
  healSource(): string | null;
  checksums(nodeId: string, offset: number, length: number, chunkBytes: number): Promise<Buffer>;
  copyForHeal(nodeId: string, offset: number, length: number): Promise<void>;
}

export interface HealOptions {
  access: HealAccess;
  nodeId: string;
  imageId: string;
  mode: "dirty" | "compare";
  dirty: DirtyMap;
  sizeBytes: number;
  /** 0 = unthrottled. */
  bytesPerSec: number;
  pacing: Pacing;
  chunkBytes?: number;
  compareWindowChunks?: number;
  passesMax?: number;
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  signal?: AbortSignal;
}

export interface HealResult {
  copiedBytes: number;
  comparedBytes: number;
}

export async function healReplica(o: HealOptions): Promise<HealResult> {
  const throttle = new Throttle(o.bytesPerSec, o.pacing);
  return o.mode === "dirty" ? healDirty(o, throttle) : healCompare(o, throttle);
}

function checkAbort(o: HealOptions): void {
  if (o.signal?.aborted === true) throw new ReplicationError("aborted", `healing node ${o.nodeId} of image ${o.imageId}: aborted`, { cause: o.signal.reason });
}

async function healDirty(o: HealOptions, throttle: Throttle): Promise<HealResult> {
  const chunk = o.chunkBytes ?? healDefaults.chunkBytes;
  const passesMax = o.passesMax ?? healDefaults.passesMax;
  const total = o.dirty.dirtyBytes;
  let done = 0;
  o.onProgress?.(0, total);
  for (let pass = 0; pass < passesMax && !o.dirty.isClean; pass++) {
    // The generator reads the live bitmap: bits cleared behind it do not matter, bits set behind
    // it are found by the next pass.
    for (const r of o.dirty.ranges(chunk)) {
      checkAbort(o);
      await o.access.copyForHeal(o.nodeId, r.offset, r.length);
      done += r.length;
      o.onProgress?.(Math.min(done, total), total);
      await throttle.consume(r.length, o.signal);
    }
  }
  if (!o.dirty.isClean) {
    throw new ReplicationError("io", `healing node ${o.nodeId} of image ${o.imageId}: ${o.dirty.dirtyBytes} bytes still dirty after ${passesMax} passes`);
  }
  return { copiedBytes: done, comparedBytes: 0 };
}

async function healCompare(o: HealOptions, throttle: Throttle): Promise<HealResult> {
  const chunk = o.chunkBytes ?? healDefaults.chunkBytes;
  const windowChunks = Math.min(o.compareWindowChunks ?? healDefaults.compareWindowChunks, protocolLimits.checksumChunksMax);
  const source = o.access.healSource();
  if (source === null) throw new ReplicationError("io", `healing node ${o.nodeId} of image ${o.imageId}: no in-sync copy to compare with`);
  let copied = 0;
  o.onProgress?.(0, o.sizeBytes);
  for (let at = 0; at < o.sizeBytes; at += chunk * windowChunks) {
    checkAbort(o);
    const len = Math.min(chunk * windowChunks, o.sizeBytes - at);
    const [want, have] = await Promise.all([o.access.checksums(source, at, len, chunk), o.access.checksums(o.nodeId, at, len, chunk)]);
    for (let i = 0; i * chunk < len; i++) {
      if (digestAt(want, i).equals(digestAt(have, i))) continue;
      checkAbort(o);
      const n = Math.min(chunk, len - i * chunk);
      await o.access.copyForHeal(o.nodeId, at + i * chunk, n);
      copied += n;
      await throttle.consume(n, o.signal);
    }
    o.onProgress?.(at + len, o.sizeBytes);
    await throttle.consume(len, o.signal);
  }
  return { copiedBytes: copied, comparedBytes: o.sizeBytes };
}

/** The coordinator side heal needs for a whole heal (ReplicatedBackend has these). */
export interface HealableBackend extends HealAccess {
  readonly sizeBytes: number;
  startHealing(nodeId: string): { mode: "dirty" | "compare"; dirty: DirtyMap };
  abandonHealing(nodeId: string, reason: string): void;
  completeHeal(nodeId: string, commit: () => Promise<void>): Promise<void>;
}

export interface RejoinOptions {
  backend: HealableBackend;
  nodeId: string;
  imageId: string;
  bytesPerSec: number;
  pacing: Pacing;
  /** Commits replicaInSync through Raft; new writes wait while it runs. */
  markInSync: () => Promise<void>;
  /** Called at most every progressIntervalMs (and at the end), e.g. to propose healProgress. */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  progressIntervalMs?: number;
  signal?: AbortSignal;
}

export const progressIntervalMsDefault = 2_000;

/**
 * A whole heal of an out-of-sync replica that is reachable again: starts sending it new writes,
 * heals it, then marks it in sync. On failure or abort it goes back to out of sync, keeping
 * whatever dirty regions are left for the next attempt.
 */
export async function healAndRejoin(o: RejoinOptions): Promise<HealResult> {
  const { mode, dirty } = o.backend.startHealing(o.nodeId);
  const intervalMs = o.progressIntervalMs ?? progressIntervalMsDefault;
  let lastMs = -Infinity;
  const progress = (done: number, total: number): void => {
    const now = o.pacing.nowMs();
    if (done < total && now - lastMs < intervalMs) return;
    lastMs = now;
    o.onProgress?.(done, total);
  };
  try {
    const result = await healReplica({
      access: o.backend,
      nodeId: o.nodeId,
      imageId: o.imageId,
      mode,
      dirty,
      sizeBytes: o.backend.sizeBytes,
      bytesPerSec: o.bytesPerSec,
      pacing: o.pacing,
      onProgress: progress,
      ...(o.signal ? { signal: o.signal } : {}),
    });
    await o.backend.completeHeal(o.nodeId, o.markInSync);
    return result;
  } catch (err) {
    o.backend.abandonHealing(o.nodeId, `heal failed: ${err instanceof Error ? err.message : String(err)}`);
    throw err;
  }
}
