// One image as this node's NBD server exports it. The first NBD connection makes this node the
// image's coordinator: it takes the writer epoch through Raft (fencing any previous writer),
// opens the local copy and a replication channel to every other brick at that epoch, and serves
// a ReplicatedBackend; while open it heals the replicas that are out of sync as soon as they
// answer again. The last connection's close (after a short grace, so a client that reconnects
// keeps the epoch) flushes, closes and releases the writer epoch cleanly, leaving in the replicated
// state the regions each out-of-sync replica missed, so the next writer (a migrated VM's new node,
// or the node that heals an idle image) copies just those instead of comparing whole images.
//
// Each NBD connection gets a view bound to the open it started on. When another node takes the
// epoch, this open is fenced: its connections get EIO from then on, for good (a guest whose disk
// was taken over must not win it back), while a connection made later opens afresh.
import type { Duplex } from "node:stream";
import type { CommandResult } from "../../core/state/apply.ts";
import type { Logger } from "../../core/raft/types.ts";
import type { BlockBackend, WriteOptions } from "../nbd/backend.ts";
import { StorageError } from "../nbd/backend.ts";
import { DirtyMap, type ByteRange } from "../replication/dirty-map.ts";
import { healAndRejoin, healReplica } from "../replication/heal.ts";
import type { ImageTable } from "../replication/image-table.ts";
import { ReplicaClient } from "../replication/replica-client.ts";
import { ReplicatedBackend } from "../replication/replicated-backend.ts";
import type { ReplicaTarget } from "../replication/replica-target.ts";
import type { Pacing } from "../replication/throttle.ts";
import type { ImageRecord } from "../volume/model.ts";
import { dirtyRangesMax, replicaReasonCharsMax } from "../volume/storage-writer.ts";
import { imageFileBytes } from "./layout.ts";
import { LocalBrickReplica } from "./local-brick.ts";

export const coordinatorDefaults = {
  /** After the last NBD connection closes, the epoch is kept this long for a reconnect. */
  idleCloseMs: 2_000,
  healIntervalMs: 2_000,
  /** Heal copy rate; 0 = unthrottled. */
  healBytesPerSec: 200 * 1024 * 1024,
  /** Heal progress goes into the replicated state at most this often. */
  progressIntervalMs: 1_000,
  replicaTimeoutMs: 5_000,
} as const;

export interface CoordinatorDeps {
  nodeId: number;
  log: Logger;
  table: ImageTable;
  /** The image's record from the local replica (null once deleted). */
  record(imageId: string): ImageRecord | null;
  /** Proposes a storage command through Raft; resolves once applied here. */
  execute(name: string, payload: Record<string, unknown>): Promise<CommandResult>;
  /** A fresh mutual-TLS replication channel to a node. */
  connect(nodeId: number): Promise<Duplex>;
  pacing: Pacing;
  healBytesPerSec?: number;
  replicaTimeoutMs?: number;
  idleCloseMs?: number;
}

interface Open {
  /** Which open this is (views compare it to know they were fenced). */
  seq: number;
  epoch: number;
  /** What I/O goes to: the replicated backend, or a read-only copy for a library image. */
  io: BlockBackend & { close(): Promise<void> };
  /** null for a read-only library image (nothing to replicate or heal). */
  backend: ReplicatedBackend | null;
  healTimer: NodeJS.Timeout | null;
  healing: Set<string>;
  /** Heals under way (close waits for them after aborting, so the dirty maps are settled). */
  healRuns: Set<Promise<void>>;
  heals: AbortController;
}

export class CoordinatedImage {
  private refs = 0;
  private opens = 0;
  private opening: Promise<Open> | null = null;
  private current: Open | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private closing: Promise<void> = Promise.resolve();

  constructor(
    private readonly deps: CoordinatorDeps,
    readonly imageId: string,
    readonly name: string,
    private fileBytes: number,
  ) {}

  get sizeBytes(): number {
    return this.current?.io.sizeBytes ?? this.fileBytes;
  }

  /**
   * A library image (ISO, template) once uploaded is immutable: exported read-only, served from
   * an in-sync copy without taking the writer epoch, so any number of nodes can attach it.
   */
  get readOnly(): boolean {
    const r = this.deps.record(this.imageId);
    return r !== null && isLibrary(r);
  }

  /** The image's record changed size (grown): a closed image just exports the new size. */
  setFileBytes(bytes: number): void {
    if (bytes > this.fileBytes) this.fileBytes = bytes;
    if (this.current?.backend && bytes > this.current.backend.sizeBytes) {
      this.current.backend.grow(bytes).catch((err: unknown) => this.deps.log.warn("growing an open image failed", { image: this.name, error: String(err) }));
    }
  }

  get isOpen(): boolean {
    return this.current !== null;
  }

  attach(): void {
    this.refs++;
    if (this.idleTimer !== null) {
      clearTimeout(this.idleTimer);
      this.idleTimer = null;
    }
    void this.usable().catch((err: unknown) => this.deps.log.warn("opening a replicated image failed", { image: this.name, error: String(err) }));
  }

  detach(): void {
    this.refs--;
    if (this.refs > 0) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      if (this.refs === 0) void this.close();
    }, this.deps.idleCloseMs ?? coordinatorDefaults.idleCloseMs);
  }

  /** The backend of one NBD connection (the server asks once per negotiation). */
  view(): BlockBackend {
    let seq = -1;
    /**
     * Runs an operation on the open this connection is bound to. The first one binds it; if
     * that first one finds its open fenced (another node took the epoch a moment ago), it binds
     * to a fresh open and runs once more — nothing was done on the connection's behalf yet.
     */
    const run = async <T>(op: (b: BlockBackend) => Promise<T>): Promise<T> => {
      const c = this.current;
      if (c && c.seq === seq && !c.backend?.isFenced) return op(c.io);
      if (seq !== -1) throw new StorageError("io", `image ${this.name}: another node took over writing it (this connection was fenced at epoch ${c?.epoch ?? "?"})`);
      const o = await this.usable();
      seq = o.seq;
      try {
        return await op(o.io);
      } catch (err) {
        if (!o.backend?.isFenced) throw err;
        const again = await this.usable();
        seq = again.seq;
        return op(again.io);
      }
    };
    const size = () => this.sizeBytes;
    const readOnly = () => this.readOnly;
    return {
      get sizeBytes() {
        return size();
      },
      get readOnly() {
        return readOnly();
      },
      flushCoversAllConnections: true,
      attach: () => this.attach(),
      detach: () => this.detach(),
      read: (offset, length) => run((b) => b.read(offset, length)),
      write: (offset, data, options) => run((b) => b.write(offset, data, options)),
      flush: () => run((b) => b.flush()),
      trim: (offset, length) => run((b) => b.trim(offset, length)),
      writeZeroes: (offset, length, options) => run((b) => b.writeZeroes(offset, length, options)),
    };
  }

  /** Writes of an upload (storage-node.ts): through the current open, reopened if fenced. */
  async write(offset: number, data: Buffer, options: WriteOptions): Promise<void> {
    return (await this.usable()).io.write(offset, data, options);
  }

  async flush(): Promise<void> {
    return (await this.usable()).io.flush();
  }

  /** The current open, or a new one when there is none or it was fenced. */
  private async usable(): Promise<Open> {
    const c = this.current;
    const epochNow = this.deps.record(this.imageId)?.writerEpoch ?? 0;
    if (c?.backend && (c.backend.isFenced || epochNow > c.epoch)) {
      this.deps.log.warn("image fenced by a newer writer; reopening for new connections", { image: this.name, epoch: c.epoch });
      void this.close(false);
    }
    return this.backend();
  }

  private backend(): Promise<Open> {
    if (this.current) return Promise.resolve(this.current);
    if (this.opening === null) {
      this.opening = this.closing.then(() => this.open()).then(
        (o) => {
          this.current = o;
          this.opening = null;
          return o;
        },
        (err: unknown) => {
          this.opening = null;
          throw err;
        },
      );
    }
    return this.opening;
  }

  private async open(): Promise<Open> {
    const { deps } = this;
    const seq = ++this.opens;
    const current = deps.record(this.imageId);
    if (current !== null && isLibrary(current)) return this.openReadOnly(current);
    const acquired = await deps.execute("storage.image.acquireWriter", { id: this.imageId, nodeId: deps.nodeId });
    if (!acquired.ok) throw new StorageError("io", `opening image ${this.name}: taking the writer epoch failed: ${acquired.message}`);
    const epoch = acquired.epoch as number;
    const record = deps.record(this.imageId);
    if (record === null) throw new StorageError("io", `opening image ${this.name}: it was deleted`);
    const bytes = imageFileBytes(record);
    this.fileBytes = bytes;
    const local = await LocalBrickReplica.open(String(deps.nodeId), deps.table, this.imageId, epoch, bytes);
    const remotes = record.replicas
      .filter((r) => r.nodeId !== deps.nodeId)
      .map((r) => new ReplicaClient({
        nodeId: String(r.nodeId), imageId: this.imageId, epoch, sizeBytes: bytes,
        connect: () => deps.connect(r.nodeId), replicaTimeoutMs: deps.replicaTimeoutMs ?? coordinatorDefaults.replicaTimeoutMs,
      }));
    // The previous writer's dirty maps are complete only if it released cleanly (no writer since).
    const knownDirty = new Map<string, ByteRange[]>();
    if (acquired.previousClean === true) {
      for (const r of record.replicas) if (!r.inSync && r.dirtyRanges !== null) knownDirty.set(String(r.nodeId), r.dirtyRanges.map(([offset, length]) => ({ offset, length })));
    }
    const backend = new ReplicatedBackend({
      imageId: this.imageId, epoch, sizeBytes: bytes, local, remotes, log: deps.log, knownDirty,
      inSync: record.replicas.filter((r) => r.inSync).map((r) => String(r.nodeId)),
      control: { markOutOfSync: (nodeId, info) => this.markOutOfSync(epoch, Number(nodeId), info) },
    });
    const open: Open = {
      seq, epoch, io: backend, backend, healing: new Set(), healRuns: new Set(), heals: new AbortController(),
      healTimer: setInterval(() => this.healTick(), coordinatorDefaults.healIntervalMs),
    };
    deps.log.info("coordinating image", { image: this.name, epoch, previousClean: acquired.previousClean, previousNode: acquired.previousNodeId ?? null });
    if (acquired.previousClean === false) void this.reconcile(open);
    return open;
  }

  private async openReadOnly(record: ImageRecord): Promise<Open> {
    const { deps } = this;
    const bytes = imageFileBytes(record);
    const inSync = record.replicas.filter((r) => r.inSync).map((r) => r.nodeId);
    const target: ReplicaTarget = inSync.includes(deps.nodeId)
      ? await LocalBrickReplica.open(String(deps.nodeId), deps.table, this.imageId, record.writerEpoch, bytes)
      : new ReplicaClient({ nodeId: String(inSync[0] ?? 0), imageId: this.imageId, epoch: record.writerEpoch, sizeBytes: bytes, connect: () => deps.connect(inSync[0] ?? 0) });
    return { seq: ++this.opens, epoch: record.writerEpoch, io: readOnlyBackend(target, bytes, this.name), backend: null, healing: new Set(), healRuns: new Set(), heals: new AbortController(), healTimer: null };
  }

  /**
   * After an unclean takeover (the previous writer crashed or was fenced mid-write) the in-sync
   * copies can differ in writes that were never acknowledged. This coordinator's copy is the one
   * its reads come from, so the others are made to match it: compare checksums chunk by chunk
   * and copy the chunks that differ, in the background and under the range lock.
   */
  private async reconcile(o: Open): Promise<void> {
    const backend = o.backend;
    if (!backend || backend.healSource() !== String(this.deps.nodeId)) return;
    for (const r of backend.status()) {
      if (r.local || r.state !== "in_sync") continue;
      const started = performance.now();
      try {
        const result = await healReplica({
          access: backend, nodeId: r.nodeId, imageId: this.imageId, mode: "compare", dirty: new DirtyMap(backend.sizeBytes),
          sizeBytes: backend.sizeBytes, bytesPerSec: this.deps.healBytesPerSec ?? coordinatorDefaults.healBytesPerSec, pacing: this.deps.pacing, signal: o.heals.signal,
        });
        this.deps.log.info("replica reconciled after an unclean takeover", { image: this.name, node: Number(r.nodeId), copiedBytes: result.copiedBytes, comparedBytes: result.comparedBytes, ms: Math.round(performance.now() - started) });
      } catch (err) {
        this.deps.log.warn("reconciling a replica after an unclean takeover failed", { image: this.name, node: Number(r.nodeId), error: String(err) });
      }
    }
  }

  private async markOutOfSync(epoch: number, nodeId: number, info: { fullHeal: boolean; reason: string }): Promise<void> {
    const reason = `${replicaFailure(info.reason)}: ${info.reason}`.slice(0, replicaReasonCharsMax);
    const r = await this.deps.execute("storage.image.replicaOutOfSync", { id: this.imageId, epoch, nodeId, fullHeal: info.fullHeal, reason });
    if (!r.ok) throw new StorageError("io", `marking node ${nodeId}'s replica of image ${this.name} out of sync: ${r.message}`);
    this.deps.log.warn("replica out of sync", { image: this.name, node: nodeId, epoch, reason: info.reason, fullHeal: info.fullHeal });
  }

  /** Starts a heal of every replica that is out, one at a time per replica. */
  private healTick(): void {
    const o = this.current;
    if (!o?.backend) return;
    for (const r of o.backend.status()) {
      if (r.state !== "out" || o.healing.has(r.nodeId)) continue;
      o.healing.add(r.nodeId);
      const run: Promise<void> = this.heal(o, r.nodeId).finally(() => {
        o.healing.delete(r.nodeId);
        o.healRuns.delete(run);
      });
      o.healRuns.add(run);
    }
  }

  private async heal(o: Open, nodeId: string): Promise<void> {
    const { deps } = this;
    const backend = o.backend;
    if (!backend) return;
    const started = performance.now();
    try {
      const result = await healAndRejoin({
        backend, nodeId, imageId: this.imageId, pacing: deps.pacing, signal: o.heals.signal,
        bytesPerSec: deps.healBytesPerSec ?? coordinatorDefaults.healBytesPerSec, progressIntervalMs: coordinatorDefaults.progressIntervalMs,
        onProgress: (done, total) => {
          void deps.execute("storage.image.healProgress", { id: this.imageId, epoch: o.epoch, nodeId: Number(nodeId), doneBytes: done, totalBytes: total }).catch(() => undefined);
        },
        markInSync: async () => {
          const r = await deps.execute("storage.image.replicaInSync", { id: this.imageId, epoch: o.epoch, nodeId: Number(nodeId) });
          if (!r.ok) throw new StorageError("io", `marking node ${nodeId}'s replica of image ${this.name} in sync: ${r.message}`);
        },
      });
      deps.log.info("replica healed", { image: this.name, node: Number(nodeId), copiedBytes: result.copiedBytes, comparedBytes: result.comparedBytes, ms: Math.round(performance.now() - started) });
    } catch (err) {
      deps.log.debug("heal not finished", { image: this.name, node: Number(nodeId), error: String(err) });
    }
  }

  /**
   * Flushes, closes the copies and releases the writer epoch (the next opener finds it clean);
   * a fenced open is closed without flush or release (the epoch is someone else's now).
   */
  close(release = true): Promise<void> {
    const o = this.current;
    if (!o) return this.closing;
    this.current = null;
    this.closing = this.closing.then(async () => {
      if (o.healTimer) clearInterval(o.healTimer);
      o.heals.abort();
      await Promise.allSettled([...o.healRuns]);
      let clean = release && !o.backend?.isFenced;
      if (clean) try {
        await o.io.flush();
      } catch (err) {
        clean = false;
        this.deps.log.warn("final flush of an image failed; leaving its epoch held (the next writer compares replicas)", { image: this.name, error: String(err) });
      }
      const keep = clean && o.backend ? o.backend.dirtyToKeep(dirtyRangesMax) : new Map<string, ByteRange[]>();
      await o.io.close();
      if (clean && o.backend) {
        const dirty = [...keep].map(([nodeId, ranges]) => ({ nodeId: Number(nodeId), ranges: ranges.map((r) => [r.offset, r.length]) }));
        await this.deps.execute("storage.image.releaseWriter", { id: this.imageId, epoch: o.epoch, dirty }).catch((err: unknown) =>
          this.deps.log.warn("releasing the writer epoch failed", { image: this.name, error: String(err) }),
        );
      }
    });
    return this.closing;
  }
}

function isLibrary(r: ImageRecord): boolean {
  return r.kind !== "disk" && r.state === "ready";
}

/** Reads from one in-sync copy; every change is refused (the image is immutable). */
function readOnlyBackend(target: ReplicaTarget, sizeBytes: number, name: string): BlockBackend & { close(): Promise<void> } {
  const refuse = () => Promise.reject(new StorageError("invalid_argument", `image ${name} is a read-only library image`));
  return {
    sizeBytes, flushCoversAllConnections: true, readOnly: true,
    read: (offset, length) => target.read(offset, length),
    write: refuse, trim: refuse, writeZeroes: refuse,
    flush: () => Promise.resolve(),
    close: () => target.close(),
  };
}

/** The kind of a replica failure, in the words an administrator looks for first. */
export function replicaFailure(message: string): string {
  if (/ENOSPC|no.space|no_space|EDQUOT/i.test(message)) return "brick full";
  if (/timeout|timed out/i.test(message)) return "not answering";
  if (/closed|ECONNRESET|ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|connect/i.test(message)) return "unreachable";
  return "I/O error";
}
