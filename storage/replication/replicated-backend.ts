// The coordinator's view of a replicated image, served to NBD as a BlockBackend. Writes go to
// every in-sync (and healing) replica in parallel and are acknowledged only when each in-sync
// replica has them, or a replica that failed has been marked out of sync through Raft
// (control.markOutOfSync resolves after the commit) with the write's region in its dirty map. If
// that mark fails (no quorum, fenced) the write fails with EIO: an acknowledged write is on every
// replica the replicated state calls in sync. Reads come from the local copy when in sync, else
// from an in-sync remote. Overlapping writes are ordered by a range lock so replicas apply them
// in the same order; heal copies take the same lock.
import type { Logger } from "../../core/raft/types.ts";
import type { BlockBackend, WriteOptions, WriteZeroesOptions } from "../nbd/backend.ts";
import { StorageError } from "../nbd/backend.ts";
import { fileBackendDefaults } from "../brick/file-backend.ts";
import { DirtyMap, dirtyExtentBytesDefault, type ByteRange } from "./dirty-map.ts";
import { ReplicationError } from "./errors.ts";
import { RangeLock } from "./range-lock.ts";
import type { ReplicaTarget } from "./replica-target.ts";
import { UnflushedRegions, unflushedExtentsMaxDefault } from "./unflushed.ts";

export interface ReplicationControl {
  /** Marks the replica out of sync through Raft; resolves only after the commit. */
  markOutOfSync(nodeId: string, info: { fullHeal: boolean; reason: string }): Promise<void>;
}

/** failing: dropped from writes, its out-of-sync mark not yet committed (writes wait for it). */
export type ReplicaState = "in_sync" | "failing" | "out" | "healing";

export interface ReplicaStatus {
  nodeId: string;
  local: boolean;
  state: ReplicaState;
  /** The dirty regions are unknown: heal by compare. */
  fullHeal: boolean;
  dirtyBytes: number;
  reason: string;
}

export interface ReplicatedBackendOptions {
  imageId: string;
  epoch: number;
  sizeBytes: number;
  /** The coordinator's own copy. */
  local: ReplicaTarget;
  remotes: readonly ReplicaTarget[];
  /** Node ids the replicated state calls in sync; the others start out of sync with unknown regions. */
  inSync: Iterable<string>;
  /**
   * For replicas that are out of sync: the regions they missed, complete, as the previous writer
   * left them at a clean release. Such a replica starts with that dirty map instead of unknown regions.
   */
  knownDirty?: ReadonlyMap<string, readonly ByteRange[]>;
  control: ReplicationControl;
  dirtyExtentBytes?: number;
  unflushedExtentsMax?: number;
  /** Trims shorter than this are ignored on every replica (a hint; keeps copies identical). */
  trimBytesMin?: number;
  log?: Logger;
}

interface Replica {
  readonly target: ReplicaTarget;
  readonly local: boolean;
  state: ReplicaState;
  dirty: DirtyMap;
  fullHeal: boolean;
  marking: Promise<void> | null;
  reason: string;
  /** Set while healing: a compare heal that stops leaves the regions unknown again. */
  healMode: "dirty" | "compare" | null;
}

type Apply = (t: ReplicaTarget) => Promise<void>;
const silentLog: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export class ReplicatedBackend implements BlockBackend {
  /** One coordinator per image serves every NBD connection: a flush covers all of them. */
  readonly flushCoversAllConnections = true;
  readonly imageId: string;
  readonly epoch: number;
  private size: number;
  private readonly replicas: Replica[];
  private readonly localReplica: Replica;
  /** in_sync and healing replicas, rebuilt on every state change (the write fan-out). */
  private writable: Replica[] = [];
  private failing = 0;
  private readonly locks = new RangeLock();
  private readonly unflushed: UnflushedRegions;
  private readonly control: ReplicationControl;
  private readonly log: Logger;
  private readonly trimBytesMin: number;
  private gate: Promise<void> | null = null;
  private mutating = 0;
  private drainWaiters: (() => void)[] = [];
  private fenced: string | null = null;
  private closed = false;

  constructor(o: ReplicatedBackendOptions) {
    this.imageId = o.imageId;
    this.epoch = o.epoch;
    this.size = o.sizeBytes;
    this.control = o.control;
    this.log = o.log ?? silentLog;
    this.trimBytesMin = o.trimBytesMin ?? fileBackendDefaults.punchHoleBytesMin;
    const extentBytes = o.dirtyExtentBytes ?? dirtyExtentBytesDefault;
    this.unflushed = new UnflushedRegions(extentBytes, o.unflushedExtentsMax ?? unflushedExtentsMaxDefault);
    const inSync = new Set(o.inSync);
    const make = (target: ReplicaTarget, local: boolean): Replica => {
      const dirty = new DirtyMap(o.sizeBytes, extentBytes);
      const known = inSync.has(target.nodeId) ? undefined : o.knownDirty?.get(target.nodeId);
      for (const r of known ?? []) dirty.mark(r.offset, r.length);
      return {
        target,
        local,
        state: inSync.has(target.nodeId) ? "in_sync" : "out",
        dirty,
        fullHeal: !inSync.has(target.nodeId) && known === undefined, // else regions from before this coordinator are unknown
        marking: null,
        healMode: null,
        reason: inSync.has(target.nodeId) ? "" : "out of sync when this coordinator started",
      };
    };
    this.localReplica = make(o.local, true);
    this.replicas = [this.localReplica, ...o.remotes.map((t) => make(t, false))];
    this.refresh();
  }

  /** A replica has seen a newer writer epoch: this backend refuses all I/O for good. */
  get isFenced(): boolean {
    return this.fenced !== null;
  }

  get sizeBytes(): number {
    return this.size;
  }

  status(): ReplicaStatus[] {
    return this.replicas.map((r) => ({
      nodeId: r.target.nodeId,
      local: r.local,
      state: r.state,
      fullHeal: r.fullHeal,
      dirtyBytes: r.dirty.dirtyBytes,
      reason: r.reason,
    }));
  }

  /**
   * For a clean release: the regions each out-of-sync replica missed, for those whose map is
   * complete (not unknown, no heal under way) and at most rangesMax ranges long.
   */
  dirtyToKeep(rangesMax: number): Map<string, ByteRange[]> {
    const out = new Map<string, ByteRange[]>();
    for (const r of this.replicas) {
      if (r.state !== "out" || r.fullHeal) continue;
      const ranges: ByteRange[] = [];
      for (const range of r.dirty.ranges()) {
        ranges.push(range);
        if (ranges.length > rangesMax) break;
      }
      if (ranges.length <= rangesMax) out.set(r.target.nodeId, ranges);
    }
    return out;
  }

  /** The dirty map of a replica (meaningful while it is not in sync and fullHeal is false). */
  dirtyMap(nodeId: string): DirtyMap | undefined {
    return this.replicas.find((r) => r.target.nodeId === nodeId)?.dirty;
  }

  read(offset: number, length: number): Promise<Buffer> {
    try {
      this.check(offset, length, "reading");
    } catch (err) {
      return Promise.reject(err as Error);
    }
    if (this.localReplica.state === "in_sync") {
      return this.localReplica.target.read(offset, length).catch((err: unknown) => this.readRemote(offset, length, err));
    }
    return this.readRemote(offset, length, null);
  }

  write(offset: number, data: Buffer, options: WriteOptions): Promise<void> {
    return this.mutate(offset, data.length, "writing", (t) => t.write(offset, data, options.fua));
  }

  writeZeroes(offset: number, length: number, options: WriteZeroesOptions): Promise<void> {
    return this.mutate(offset, length, "zeroing", (t) => t.writeZeroes(offset, length, options));
  }

  /**
   * A trim is a hint, but a brick may skip one (busy, no hole punching) and the copies would then
   * differ. So small trims are ignored everywhere and large ones zero the range everywhere
   * (punching holes where the brick can).
   */
  async trim(offset: number, length: number): Promise<void> {
    this.check(offset, length, "trimming");
    if (length < this.trimBytesMin) return;
    await this.mutate(offset, length, "trimming", (t) => t.writeZeroes(offset, length, { fua: false, noHole: false }));
  }

  async flush(): Promise<void> {
    this.check(0, 0, "flushing");
    const covered = this.unflushed.beginFlush();
    try {
      const targets = this.writable;
      const errors = await settleAll(targets, (t) => t.flush());
      if (errors !== null) this.failed(targets, errors, null, "flushing");
      await this.settleMarks("flushing");
    } finally {
      covered();
    }
  }

  /** Grows every reachable copy; out-of-sync ones grow when they next open the image. */
  async grow(sizeBytes: number): Promise<void> {
    if (sizeBytes <= this.size) return;
    this.check(0, 0, "growing");
    const targets = this.writable;
    const errors = await settleAll(targets, (t) => t.grow(sizeBytes));
    for (const r of this.replicas) r.dirty.grow(sizeBytes);
    if (errors !== null) this.failed(targets, errors, null, "growing");
    await this.settleMarks("growing");
    this.size = sizeBytes;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled(this.replicas.map((r) => r.target.close()));
  }

  // ---- healing (driven by heal.ts through these) ----

  /**
   * Makes an out-of-sync replica receive new writes from now on. Returns how it must be healed:
   * "dirty" (copy dirtyMap's regions) or "compare" (regions unknown: compare checksums).
   */
  startHealing(nodeId: string): { mode: "dirty" | "compare"; dirty: DirtyMap } {
    const r = this.replica(nodeId, "starting a heal");
    if (r.state !== "out") throw new ReplicationError("invalid_argument", `healing node ${nodeId} of image ${this.imageId}: it is ${r.state}, not out of sync`);
    const mode = r.fullHeal ? "compare" : "dirty";
    if (mode === "compare") {
      r.dirty.clear(0, this.size); // the compare covers every region
      r.fullHeal = false;
    }
    r.state = "healing";
    r.healMode = mode;
    this.refresh();
    return { mode, dirty: r.dirty };
  }

  /** Stops sending writes to a healing replica (heal aborted); a later heal starts again. */
  abandonHealing(nodeId: string, reason: string): void {
    const r = this.replica(nodeId, "abandoning a heal");
    if (r.state !== "healing") return;
    r.state = "out";
    r.reason = reason;
    if (!this.unflushed.addTo(r.dirty) || r.healMode === "compare") r.fullHeal = true;
    r.healMode = null;
    this.refresh();
  }

  /** The copy heals read from: the local one when in sync, else an in-sync remote. */
  healSource(): string | null {
    return this.source()?.target.nodeId ?? null;
  }

  checksums(nodeId: string, offset: number, length: number, chunkBytes: number): Promise<Buffer> {
    return this.replica(nodeId, "checksumming").target.checksums(offset, length, chunkBytes);
  }

  /**
   * Copies [offset, offset+length) from the heal source to a healing replica, under the range
   * lock. Also accepts an in-sync replica: after an unclean takeover the new coordinator
   * compare-heals the others from its copy (they may differ in unacknowledged writes).
   */
  async copyForHeal(nodeId: string, offset: number, length: number): Promise<void> {
    const r = this.replica(nodeId, "healing");
    const lock = this.locks.acquire(offset, length);
    const release = typeof lock === "function" ? lock : await lock;
    try {
      const src = this.source();
      if (src === null || src === r) throw new ReplicationError("io", `healing node ${nodeId} of image ${this.imageId}: no other in-sync copy to read from`);
      const data = await src.target.read(offset, length);
      if (r.state !== "healing" && r.state !== "in_sync") {
        throw new ReplicationError("aborted", `healing node ${nodeId} of image ${this.imageId}: it is ${r.state}${r.reason === "" ? "" : ` (${r.reason})`}`);
      }
      this.unflushed.note(offset, length);
      const wasInSync = r.state === "in_sync";
      try {
        await r.target.write(offset, data, false);
      } catch (err) {
        this.failed([r], [err], { offset, length }, "healing");
        if (wasInSync) await this.settleMarks(`healing node ${nodeId}`);
        throw err;
      }
      r.dirty.clear(offset, length);
    } finally {
      release();
    }
  }

  /**
   * Ends a heal: holds new writes, waits for those under way, flushes the healed copy, checks it
   * is still clean and healing, runs commit (replicaInSync through Raft), then counts it in sync.
   */
  async completeHeal(nodeId: string, commit: () => Promise<void>): Promise<void> {
    const r = this.replica(nodeId, "completing a heal");
    let open = (): void => undefined;
    this.gate = new Promise<void>((resolve) => (open = resolve));
    try {
      await this.drained();
      try {
        await r.target.flush();
      } catch (err) {
        this.failed([r], [err], null, "flushing the healed copy");
        throw err;
      }
      if (r.state !== "healing" || !r.dirty.isClean || r.fullHeal) {
        throw new ReplicationError("aborted", `completing the heal of node ${nodeId} of image ${this.imageId}: it is ${r.state} with ${r.dirty.dirtyBytes} dirty bytes`);
      }
      await commit();
      r.state = "in_sync";
      r.healMode = null;
      r.reason = "";
      this.refresh();
    } finally {
      this.gate = null;
      open();
    }
  }

  // ---- internals ----

  private async mutate(offset: number, length: number, what: string, apply: Apply): Promise<void> {
    this.check(offset, length, what);
    while (this.gate !== null) await this.gate;
    this.mutating++;
    try {
      const lock = this.locks.acquire(offset, length);
      const release = typeof lock === "function" ? lock : await lock;
      try {
        this.unflushed.note(offset, length);
        const targets = this.writable;
        const errors = await settleAll(targets, apply);
        if (errors !== null) this.failed(targets, errors, { offset, length }, what);
        this.markMissed(offset, length);
        if (this.failing > 0 || this.fenced !== null) await this.settleMarks(`${what} at ${offset}`);
      } finally {
        release();
      }
    } finally {
      if (--this.mutating === 0 && this.drainWaiters.length > 0) for (const w of this.drainWaiters.splice(0)) w();
    }
  }

  /** Records the range in the dirty map of every replica that did not get it. */
  private markMissed(offset: number, length: number): void {
    if (this.writable.length === this.replicas.length) return;
    for (const r of this.replicas) if (r.state === "out" || r.state === "failing") r.dirty.mark(offset, length);
  }

  private failed(targets: Replica[], errors: (unknown | undefined)[], range: { offset: number; length: number } | null, what: string): void {
    for (let i = 0; i < targets.length; i++) {
      const err = errors[i];
      const r = targets[i]!;
      if (err === undefined) continue;
      const code = (err as { code?: unknown }).code;
      if (code === "stale_epoch") {
        this.fenced ??= `node ${r.target.nodeId} has seen a newer writer epoch than ${this.epoch}`;
        continue;
      }
      const reason = `${what} failed on node ${r.target.nodeId}: ${err instanceof Error ? err.message : String(err)}`;
      if (range !== null) r.dirty.mark(range.offset, range.length);
      if (range === null || !this.unflushed.addTo(r.dirty)) r.fullHeal = true; // a failed flush may have lost anything unflushed
      if (r.state === "in_sync") {
        r.state = "failing";
        this.failing++;
      } else if (r.state === "healing") {
        r.state = "out";
        if (r.healMode === "compare") r.fullHeal = true;
        r.healMode = null;
      }
      r.reason = reason;
      this.log.warn("replica dropped out of sync", { image: this.imageId, node: r.target.nodeId, code, reason });
    }
    this.refresh();
  }

  /** Waits until every failing replica's out-of-sync mark is committed; throws EIO when one fails. */
  private async settleMarks(what: string): Promise<void> {
    if (this.fenced !== null) throw new StorageError("io", `${what} image ${this.imageId}: fenced: ${this.fenced}`);
    if (this.failing === 0) return;
    const marks: Promise<void>[] = [];
    for (const r of this.replicas) if (r.state === "failing") marks.push((r.marking ??= this.markOut(r)));
    try {
      await Promise.all(marks);
    } catch (err) {
      throw new StorageError("io", `${what} image ${this.imageId}: ${(err as Error).message}`, { cause: err });
    }
  }

  private markOut(r: Replica): Promise<void> {
    const nodeId = r.target.nodeId;
    return this.control.markOutOfSync(nodeId, { fullHeal: r.fullHeal, reason: r.reason }).then(
      () => {
        r.marking = null;
        if (r.state === "failing") {
          r.state = "out";
          this.failing--;
        }
      },
      (err: unknown) => {
        r.marking = null; // the next write tries again
        throw new ReplicationError("io", `marking node ${nodeId} out of sync failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      },
    );
  }

  private async readRemote(offset: number, length: number, firstError: unknown): Promise<Buffer> {
    let last = firstError;
    for (const r of this.replicas) {
      if (r.local || r.state !== "in_sync") continue;
      try {
        return await r.target.read(offset, length);
      } catch (err) {
        last = err;
      }
    }
    const why = last === null ? "no copy is in sync" : `every in-sync copy failed, last: ${(last as Error).message}`;
    throw new StorageError("io", `reading image ${this.imageId} at ${offset}+${length}: ${why}`, { cause: last });
  }

  private source(): Replica | null {
    if (this.localReplica.state === "in_sync") return this.localReplica;
    return this.replicas.find((r) => r.state === "in_sync") ?? null;
  }

  private replica(nodeId: string, what: string): Replica {
    const r = this.replicas.find((x) => x.target.nodeId === nodeId);
    if (r === undefined) throw new ReplicationError("invalid_argument", `${what} on image ${this.imageId}: node ${nodeId} holds no replica`);
    return r;
  }

  private refresh(): void {
    this.writable = this.replicas.filter((r) => r.state === "in_sync" || r.state === "healing");
  }

  private drained(): Promise<void> {
    if (this.mutating === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private check(offset: number, length: number, what: string): void {
    if (this.closed) throw new StorageError("closed", `${what} image ${this.imageId}: closed`);
    if (this.fenced !== null) throw new StorageError("io", `${what} image ${this.imageId}: fenced: ${this.fenced}`);
    if (!Number.isSafeInteger(offset) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new StorageError("out_of_range", `${what} image ${this.imageId}: range ${offset}+${length} is outside 0..${this.size}`);
    }
  }
}

/** Runs apply on every replica at once; null when all succeeded, else the errors by index. */
function settleAll(targets: Replica[], apply: Apply): Promise<(unknown | undefined)[] | null> {
  return new Promise((resolve) => {
    let left = targets.length;
    let errors: (unknown | undefined)[] | null = null;
    if (left === 0) resolve(null);
    for (let i = 0; i < targets.length; i++) {
      let p: Promise<void>;
      try {
        p = apply(targets[i]!.target);
      } catch (err) {
        p = Promise.reject(err as Error);
      }
      p.then(
        () => {
          if (--left === 0) resolve(errors);
        },
        (err: unknown) => {
          (errors ??= new Array<unknown>(targets.length))[i] = err ?? new Error("unknown failure");
          if (--left === 0) resolve(errors);
        },
      );
    }
  });
}
