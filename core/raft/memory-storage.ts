// An in-memory LogStore for tests and the deterministic simulator. It keeps the exact
// semantics a durable store must have (append truncates a conflicting suffix, compaction keeps
// the term of the compacted index, snapshots replace the log), so code tested against it
// behaves the same on SQLite. `sync` is accepted and ignored: memory is "durable" at once.

import { RaftError, type ConfState, type Entry, type HardState, type LogStore, type Snapshot } from "./types.ts";
import { limitSize } from "./entries.ts";

export interface MemoryStorageOptions {
  /** createSnapshot drops entries up to `index - keepEntries`; Infinity keeps them all. */
  keepEntries?: number;
}

export class MemoryStorage implements LogStore {
  private hardState: HardState = { term: 0, vote: 0, commit: 0 };
  private snap: Snapshot = { metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } }, data: new Uint8Array(0) };
  /** ents[0] is a dummy standing for the compacted prefix: its index and term are those of the last compacted entry. */
  private ents: Entry[] = [{ term: 0, index: 0, type: 0, data: new Uint8Array(0) }];
  private readonly keepEntries: number;

  constructor(options: MemoryStorageOptions = {}) {
    this.keepEntries = options.keepEntries ?? Infinity;
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: { ...this.hardState }, confState: copyConfState(this.snap.metadata.confState) };
  }

  private offset(): number {
    return this.ents[0]!.index;
  }

  firstIndex(): number {
    return this.offset() + 1;
  }

  lastIndex(): number {
    return this.offset() + this.ents.length - 1;
  }

  term(i: number): number {
    const offset = this.offset();
    if (i < offset) throw new RaftError("compacted", `reading term of entry ${i}: compacted (first index ${offset + 1})`);
    if (i - offset >= this.ents.length) throw new RaftError("unavailable", `reading term of entry ${i}: beyond last index ${this.lastIndex()}`);
    return this.ents[i - offset]!.term;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = this.offset();
    if (lo <= offset) throw new RaftError("compacted", `reading entries [${lo}, ${hi}): compacted (first index ${offset + 1})`);
    if (hi > this.lastIndex() + 1) throw new RaftError("unavailable", `reading entries [${lo}, ${hi}): beyond last index ${this.lastIndex()}`);
    return limitSize(this.ents.slice(lo - offset, hi - offset), maxBytes);
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  append(entries: Entry[], _sync: boolean): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[entries.length - 1]!.index;
    if (last < first) return; // entirely compacted already: nothing new
    // Entries before our first index are already part of the snapshot: skip them.
    const ents = first > entries[0]!.index ? entries.slice(first - entries[0]!.index) : entries;
    const start = ents[0]!.index - this.offset();
    if (start > this.ents.length) {
      throw new RaftError("invalid", `appending entries from ${ents[0]!.index}: gap after last index ${this.lastIndex()}`);
    }
    if (start < this.ents.length) this.ents.length = start; // truncate the conflicting suffix
    for (const e of ents) this.ents.push(e);
  }

  setHardState(hs: HardState, _sync: boolean): void {
    this.hardState = { ...hs };
  }

  applySnapshot(snap: Snapshot): void {
    if (snap.metadata.index < this.snap.metadata.index) {
      throw new RaftError("invalid", `applying snapshot at ${snap.metadata.index}: older than current snapshot at ${this.snap.metadata.index}`);
    }
    this.snap = { metadata: { ...snap.metadata, confState: copyConfState(snap.metadata.confState) }, data: snap.data };
    this.ents = [{ term: snap.metadata.term, index: snap.metadata.index, type: 0, data: new Uint8Array(0) }];
  }

  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    if (index <= this.snap.metadata.index) {
      throw new RaftError("invalid", `creating snapshot at ${index}: not newer than current snapshot at ${this.snap.metadata.index}`);
    }
    if (index > this.lastIndex()) {
      throw new RaftError("unavailable", `creating snapshot at ${index}: beyond last index ${this.lastIndex()}`);
    }
    this.snap = { metadata: { index, term: this.term(index), confState: copyConfState(confState) }, data };
    if (Number.isFinite(this.keepEntries) && index - this.keepEntries > this.offset()) this.compact(index - this.keepEntries);
    return this.snap;
  }

  compact(compactIndex: number): void {
    const offset = this.offset();
    if (compactIndex <= offset) {
      throw new RaftError("compacted", `compacting to ${compactIndex}: already compacted up to ${offset}`);
    }
    if (compactIndex > this.lastIndex()) {
      throw new RaftError("unavailable", `compacting to ${compactIndex}: beyond last index ${this.lastIndex()}`);
    }
    const i = compactIndex - offset;
    const dummy = { term: this.ents[i]!.term, index: compactIndex, type: 0, data: new Uint8Array(0) };
    this.ents = [dummy, ...this.ents.slice(i + 1)];
  }
}

function copyConfState(cs: ConfState): ConfState {
  return { voters: [...cs.voters], learners: [...cs.learners] };
}
