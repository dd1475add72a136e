// A simulated disk under Raft's LogStore. Reads see every write (the page cache); only synced
// writes survive a crash. A sync flushes everything written before it, as fsync on the one
// log file would. A crash while a Ready is being persisted can tear the append in progress: a
// prefix of its entries survives — never a half entry, because a real store detects a torn
// record by its checksum and truncates it, so the torn outcome is modelled, not the bytes.
//
// `syncLieRate` is a fault for the simulator's own self-test: a disk that acknowledges fsync
// without persisting must make the invariant checkers fire.

import { MemoryStorage } from "../../core/raft/memory-storage.ts";
import type { ConfState, Entry, HardState, LogStore, Snapshot } from "../../core/raft/types.ts";
import type { SimRand } from "./rng.ts";

export interface DiskOptions {
  /** Entries kept behind a locally created snapshot, for followers that lag a little. */
  keepEntries: number;
  /** Chance that an fsync is acknowledged without persisting (a lying disk; 0 in real runs). */
  syncLieRate: number;
}

type Op =
  | { kind: "append"; entries: Entry[] }
  | { kind: "hardState"; hs: HardState }
  | { kind: "applySnapshot"; snap: Snapshot }
  | { kind: "createSnapshot"; index: number; confState: ConfState; data: Uint8Array }
  | { kind: "compact"; index: number };

export interface DiskHooks {
  /** Called with entries as they are written (before a crash can undo them), for log matching. */
  onAppend?(entries: Entry[], store: LogStore): void;
}

export class SimDisk implements LogStore {
  private view: MemoryStorage;
  private durable: MemoryStorage;
  private unsynced: Op[] = [];
  syncs = 0;

  constructor(
    private readonly rand: SimRand,
    private readonly options: DiskOptions,
    private readonly hooks: DiskHooks = {},
  ) {
    this.view = new MemoryStorage({ keepEntries: options.keepEntries });
    this.durable = new MemoryStorage({ keepEntries: options.keepEntries });
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return this.view.initialState();
  }
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    return this.view.entries(lo, hi, maxBytes);
  }
  term(i: number): number {
    return this.view.term(i);
  }
  firstIndex(): number {
    return this.view.firstIndex();
  }
  lastIndex(): number {
    return this.view.lastIndex();
  }
  snapshot(): Snapshot {
    return this.view.snapshot();
  }

  append(entries: Entry[], sync: boolean): void {
    this.view.append(entries, sync);
    this.hooks.onAppend?.(entries, this.view);
    this.write({ kind: "append", entries }, sync);
  }

  /** The write in progress when the power went: only the first `keep` entries reach the platter. */
  appendTorn(entries: Entry[], keep: number): void {
    const prefix = entries.slice(0, keep);
    if (prefix.length > 0) this.append(prefix, true);
  }

  setHardState(hs: HardState, sync: boolean): void {
    this.view.setHardState(hs, sync);
    this.write({ kind: "hardState", hs: { ...hs } }, sync);
  }

  /** Snapshot files are written aside and renamed into place after an fsync: always durable. */
  applySnapshot(snap: Snapshot): void {
    this.view.applySnapshot(snap);
    this.write({ kind: "applySnapshot", snap }, true);
  }

  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    const snap = this.view.createSnapshot(index, confState, data);
    this.write({ kind: "createSnapshot", index, confState, data }, true);
    return snap;
  }

  compact(compactIndex: number): void {
    this.view.compact(compactIndex);
    this.write({ kind: "compact", index: compactIndex }, true);
  }

  /** Power loss: whatever was not synced is gone; the next reader sees the durable state. */
  crash(): void {
    this.unsynced = [];
    this.view = cloneStorage(this.durable, this.options.keepEntries);
  }

  /** Entries currently readable (for invariant checks): [firstIndex, lastIndex]. */
  readableEntries(): Entry[] {
    const lo = this.view.firstIndex();
    const hi = this.view.lastIndex();
    return hi < lo ? [] : this.view.entries(lo, hi + 1, Infinity);
  }

  private write(op: Op, sync: boolean): void {
    this.unsynced.push(op);
    if (!sync) return;
    this.syncs++;
    if (this.options.syncLieRate > 0 && this.rand.chance(this.options.syncLieRate)) return;
    for (const o of this.unsynced) applyOp(this.durable, o);
    this.unsynced = [];
  }
}

function applyOp(store: MemoryStorage, op: Op): void {
  switch (op.kind) {
    case "append":
      store.append(op.entries, true);
      return;
    case "hardState":
      store.setHardState(op.hs, true);
      return;
    case "applySnapshot":
      store.applySnapshot(op.snap);
      return;
    case "createSnapshot":
      store.createSnapshot(op.index, op.confState, op.data);
      return;
    case "compact":
      store.compact(op.index);
  }
}

/** Rebuilds an equal MemoryStorage through its public interface (it has no clone). */
function cloneStorage(src: MemoryStorage, keepEntries: number): MemoryStorage {
  const out = new MemoryStorage({ keepEntries });
  const snap = src.snapshot();
  const offset = src.firstIndex() - 1;
  if (offset > 0) {
    // The log's base: the compacted prefix ends at `offset`, possibly before the snapshot.
    out.applySnapshot({ metadata: { index: offset, term: src.term(offset), confState: snap.metadata.confState }, data: snap.data });
  }
  const last = src.lastIndex();
  if (last > offset) out.append(src.entries(offset + 1, last + 1, Infinity), true);
  if (snap.metadata.index > offset) out.createSnapshot(snap.metadata.index, snap.metadata.confState, snap.data);
  out.setHardState(src.initialState().hardState, true);
  return out;
}
