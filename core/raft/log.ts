// The Raft log as the core sees it: the stable part lives in Storage (already persisted by the
// driver), the unstable part (entries and possibly a snapshot not yet persisted) lives here.
// It also tracks the commit index and the applied index. Invariant:
//   storage.firstIndex-1 <= applied <= committed <= lastIndex, and applying never passes committed.

import { RaftError, type Entry, type Snapshot, type Storage } from "./types.ts";
import { limitSize } from "./entries.ts";

/** Entries (and maybe a snapshot) received but not yet handed to the driver for persistence. */
export class Unstable {
  snapshot: Snapshot | undefined = undefined;
  entries: Entry[] = [];
  /** Index of entries[0]; everything below it is in storage (or in the snapshot). */
  offset: number;

  constructor(offset: number) {
    this.offset = offset;
  }

  maybeFirstIndex(): number | undefined {
    return this.snapshot ? this.snapshot.metadata.index + 1 : undefined;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot ? this.snapshot.metadata.index : undefined;
  }

  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      return this.snapshot && this.snapshot.metadata.index === i ? this.snapshot.metadata.term : undefined;
    }
    const e = this.entries[i - this.offset];
    return e ? e.term : undefined;
  }

  /** Entries up to (i, t) are persisted: drop them, unless they were overwritten meanwhile. */
  stableTo(i: number, t: number): void {
    if (i < this.offset || this.maybeTerm(i) !== t) return;
    const n = i + 1 - this.offset;
    this.entries = n === this.entries.length ? [] : this.entries.slice(n);
    this.offset = i + 1;
  }

  stableSnapTo(i: number): void {
    if (this.snapshot && this.snapshot.metadata.index === i) this.snapshot = undefined;
  }

  restore(s: Snapshot): void {
    this.offset = s.metadata.index + 1;
    this.entries = [];
    this.snapshot = s;
  }

  truncateAndAppend(ents: Entry[]): void {
    const first = ents[0]!.index;
    if (first === this.offset + this.entries.length) {
      for (const e of ents) this.entries.push(e);
    } else if (first <= this.offset) {
      // Replaces all unstable entries (and logically the stable tail from `first` on).
      this.offset = first;
      this.entries = ents.slice();
    } else {
      this.entries = this.entries.slice(0, first - this.offset);
      for (const e of ents) this.entries.push(e);
    }
  }

  slice(lo: number, hi: number): Entry[] {
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}

export class RaftLog {
  readonly storage: Storage;
  readonly unstable: Unstable;
  /** Highest index known to be committed (on stable storage of a quorum). */
  committed: number;
  /** Highest index handed to the driver for applying (in a Ready not yet advanced). */
  applying: number;
  /** Highest index the driver confirmed applied (advance). */
  applied: number;

  constructor(storage: Storage) {
    this.storage = storage;
    const first = storage.firstIndex();
    this.unstable = new Unstable(storage.lastIndex() + 1);
    this.committed = first - 1;
    this.applying = first - 1;
    this.applied = first - 1;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /** Term of entry i, or undefined when i is compacted or beyond the last index. */
  termOrUndefined(i: number): number | undefined {
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    if (i < this.firstIndex() - 1 || i > this.lastIndex()) return undefined;
    return this.storage.term(i);
  }

  /** Term of entry i; throws RaftError "compacted" / "unavailable" when it is not known. */
  term(i: number): number {
    const t = this.termOrUndefined(i);
    if (t !== undefined) return t;
    const code = i < this.firstIndex() - 1 ? "compacted" : "unavailable";
    throw new RaftError(code, `reading term of entry ${i}: ${code} (log is ${this.firstIndex()}..${this.lastIndex()})`);
  }

  matchTerm(i: number, t: number): boolean {
    return this.termOrUndefined(i) === t;
  }

  /** Candidate's log (lastIndex, lastTerm) is at least as up to date as ours (Raft §5.4.1). */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /** Index of the first entry that conflicts with (or extends) the log, 0 if all are already there. */
  findConflict(ents: readonly Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * The largest index <= `index` whose term is <= `term`, with that term: where a leader whose
   * entry at `index` has term `term` can resume probing. Term 0 in the result means compacted.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (; index > 0; index--) {
      const t = this.termOrUndefined(index);
      if (t === undefined) return { index, term: 0 };
      if (t <= term) return { index, term: t };
    }
    return { index: 0, term: 0 };
  }

  /**
   * Follower side of AppendEntries: if our entry at `index` has term `logTerm`, append `ents`
   * (dropping a conflicting suffix) and advance the commit index. Returns the index of the last
   * new entry, or undefined when the consistency check fails.
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      if (ci <= this.committed) {
        throw new Error(`raft invariant: entry ${ci} conflicts with committed entry (committed ${this.committed})`);
      }
      this.append(ci === index + 1 ? ents : ents.slice(ci - index - 1));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  append(ents: Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index - 1;
    if (after < this.committed) {
      throw new Error(`raft invariant: appending after ${after} would overwrite committed ${this.committed}`);
    }
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  commitTo(toCommit: number): void {
    if (toCommit <= this.committed) return;
    if (toCommit > this.lastIndex()) {
      throw new Error(`raft invariant: commit ${toCommit} beyond last index ${this.lastIndex()}`);
    }
    this.committed = toCommit;
  }

  /** Leader: commit maxIndex only if it is from the current term (Raft §5.4.2, Figure 8). */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.termOrUndefined(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    if (i > this.committed || i < this.applied) {
      throw new Error(`raft invariant: applied ${i} outside [${this.applied}, ${this.committed}]`);
    }
    this.applied = i;
    if (this.applying < i) this.applying = i;
  }

  acceptApplying(i: number): void {
    if (i > this.applying) this.applying = i;
  }

  hasPendingSnapshot(): boolean {
    return this.unstable.snapshot !== undefined;
  }

  hasNextCommittedEnts(): boolean {
    return !this.hasPendingSnapshot() && this.committed > Math.max(this.applying, this.applied);
  }

  /** Committed entries not yet handed out for applying, at most maxBytes (but at least one). */
  nextCommittedEnts(maxBytes: number): Entry[] {
    if (!this.hasNextCommittedEnts()) return [];
    const lo = Math.max(this.applying, this.applied) + 1;
    return this.slice(lo, this.committed + 1, maxBytes);
  }

  unstableEntries(): Entry[] {
    return this.unstable.entries;
  }

  /** Entries from i to the end, at most maxBytes (at least one). Throws "compacted" if i is gone. */
  entries(i: number, maxBytes: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, maxBytes);
  }

  /** Entries [lo, hi), at most maxBytes (at least one), from storage then the unstable part. */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    const first = this.firstIndex();
    if (lo < first) throw new RaftError("compacted", `reading entries from ${lo}: compacted (first index ${first})`);
    if (hi > this.lastIndex() + 1) {
      throw new Error(`raft invariant: slice [${lo}, ${hi}) beyond last index ${this.lastIndex()}`);
    }
    if (lo >= hi) return [];
    const offset = this.unstable.offset;
    let ents: Entry[] = [];
    if (lo < offset) {
      ents = this.storage.entries(lo, Math.min(hi, offset), maxBytes);
      // Storage cut the slice short because of maxBytes: do not add unstable entries after a gap.
      if (ents.length < Math.min(hi, offset) - lo) return ents;
    }
    if (hi > offset) {
      const uns = this.unstable.slice(Math.max(lo, offset), hi);
      ents = ents.length === 0 ? uns : ents.concat(uns);
    }
    return limitSize(ents, maxBytes);
  }

  /** The snapshot to send a follower that needs compacted entries. */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  restore(s: Snapshot): void {
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  /** Highest index known to be on stable storage and still part of the log. */
  stableLastIndex(): number {
    return this.unstable.offset - 1;
  }
}
