// Durable Raft storage: the log, hard state, conf state and latest snapshot of one node in
// SQLite (`raft.db` in the data directory), behind the LogStore interface the core and the
// driver use. One Ready is persisted by persistReady() in ONE transaction with ONE fsync.
import fs from "node:fs";
import path from "node:path";
import type Database from "better-sqlite3";
import { openDatabase } from "../sqlite.ts";
import { entrySize } from "./entries.ts";
import { RaftError } from "./types.ts";
import type { ConfState, Entry, EntryType, HardState, LogStore, Snapshot } from "./types.ts";

/** After a checkpoint the WAL file is truncated back to at most this size. */
export const walSizeLimitBytes = 64 * 1024 * 1024;
/** Newest entries kept in memory for reads (see SqliteLogStore.tail). */
export const tailEntriesMax = 4096;

export interface SqliteLogStoreOptions {
  /** createSnapshot keeps this many entries before the snapshot index so that slightly lagging
   * followers catch up from the log instead of needing the whole snapshot (etcd's default). */
  snapshotCatchUpEntries?: number;
}

interface EntryRow { log_index: number; term: number; type: number; data: Buffer }
interface SnapshotRow { log_index: number; term: number; conf: string; data: Buffer }

const schema = `
CREATE TABLE IF NOT EXISTS entries (log_index INTEGER PRIMARY KEY, term INTEGER NOT NULL, type INTEGER NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS hard_state (id INTEGER PRIMARY KEY CHECK (id = 1), term INTEGER NOT NULL, vote INTEGER NOT NULL, commit_index INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS conf_state (id INTEGER PRIMARY KEY CHECK (id = 1), log_index INTEGER NOT NULL, conf TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS log_start (id INTEGER PRIMARY KEY CHECK (id = 1), log_index INTEGER NOT NULL, term INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS snapshot (id INTEGER PRIMARY KEY CHECK (id = 1), log_index INTEGER NOT NULL, term INTEGER NOT NULL, conf TEXT NOT NULL, data BLOB NOT NULL);
`;

function toBytes(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function toBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/**
 * Durability: WAL mode with `synchronous = FULL` makes every commit fsync the WAL before it
 * returns, so an entry or vote that the driver acknowledges is on stable storage (DESIGN.md:
 * "never trade durability for a benchmark"). With NORMAL a WAL commit survives a process crash
 * but not a power loss, which would let a node forget a vote. A Ready with mustSync = false
 * commits under NORMAL; the next FULL commit's fsync covers its frames too, since the WAL is
 * written sequentially.
 *
 * Snapshot data is a BLOB in raft.db, not a file beside it: applying a snapshot replaces the
 * snapshot, the log, the conf state and the hard state, and as one SQLite transaction that is
 * atomic with one fsync and needs no orphan-file cleanup. The price is that a few MB are
 * written twice (WAL, then checkpoint) once per snapshot interval, small next to the log.
 *
 * Hot path: term(i), firstIndex() and lastIndex() come from an in-memory array of the terms
 * of the log; SQL is read only for entry payloads.
 */
export class SqliteLogStore implements LogStore {
  readonly db: Database.Database;
  private readonly stmts;
  private readonly snapshotCatchUpEntries: number;
  /** Index of the last compacted entry (the snapshot's index or a later compaction point). */
  private startIndex = 0;
  /** terms[k] is the term of entry startIndex + k; terms[0] is the compaction point's term. */
  private terms: number[] = [0];
  private hardState: HardState = { term: 0, vote: 0, commit: 0 };
  private confState: ConfState = { voters: [], learners: [] };
  private confIndex = 0;
  private snapIndex = 0;
  /**
   * The newest entries as written (tail[k] has index tailStart + k), so that the committed
   * entries the driver applies right after writing them, and appends to followers that keep up,
   * are served from memory instead of read back through SQL. Bounded by tailEntriesMax.
   */
  private tail: Entry[] = [];
  private tailStart = 0;

  static open(dataDir: string, options: SqliteLogStoreOptions = {}): SqliteLogStore {
    fs.mkdirSync(dataDir, { recursive: true });
    const db = openDatabase(path.join(dataDir, "raft.db"), { synchronous: "FULL" });
    try {
      return new SqliteLogStore(db, options);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  constructor(db: Database.Database, options: SqliteLogStoreOptions = {}) {
    this.db = db;
    this.snapshotCatchUpEntries = options.snapshotCatchUpEntries ?? 5000;
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.pragma(`journal_size_limit = ${walSizeLimitBytes}`);
    db.exec(schema);
    this.stmts = {
      insertEntry: db.prepare("INSERT INTO entries (log_index, term, type, data) VALUES (?, ?, ?, ?)"),
      deleteFrom: db.prepare("DELETE FROM entries WHERE log_index >= ?"),
      deleteUpTo: db.prepare("DELETE FROM entries WHERE log_index <= ?"),
      deleteAll: db.prepare("DELETE FROM entries"),
      selectRange: db.prepare("SELECT log_index, term, type, data FROM entries WHERE log_index >= ? AND log_index < ? ORDER BY log_index"),
      selectTerms: db.prepare("SELECT log_index, term FROM entries ORDER BY log_index"),
      putHardState: db.prepare("INSERT OR REPLACE INTO hard_state (id, term, vote, commit_index) VALUES (1, ?, ?, ?)"),
      getHardState: db.prepare("SELECT term, vote, commit_index FROM hard_state WHERE id = 1"),
      putConf: db.prepare("INSERT OR REPLACE INTO conf_state (id, log_index, conf) VALUES (1, ?, ?)"),
      getConf: db.prepare("SELECT log_index, conf FROM conf_state WHERE id = 1"),
      putStart: db.prepare("INSERT OR REPLACE INTO log_start (id, log_index, term) VALUES (1, ?, ?)"),
      getStart: db.prepare("SELECT log_index, term FROM log_start WHERE id = 1"),
      putSnapshot: db.prepare("INSERT OR REPLACE INTO snapshot (id, log_index, term, conf, data) VALUES (1, ?, ?, ?, ?)"),
      getSnapshot: db.prepare("SELECT log_index, term, conf, data FROM snapshot WHERE id = 1"),
    };
    this.loadCache();
  }

  close(): void {
    this.db.close();
  }

  /** Rebuilds the in-memory view from the database (at open, and after a failed transaction). */
  private loadCache(): void {
    this.tail = [];
    const start = this.stmts.getStart.get() as { log_index: number; term: number } | undefined;
    this.startIndex = start?.log_index ?? 0;
    this.terms = [start?.term ?? 0];
    for (const row of this.stmts.selectTerms.iterate() as IterableIterator<{ log_index: number; term: number }>) {
      const expected = this.startIndex + this.terms.length;
      if (row.log_index !== expected) {
        throw new RaftError("invalid", `opening raft log: entry ${row.log_index} found where ${expected} was expected (log has a gap)`);
      }
      this.terms.push(row.term);
    }
    const hs = this.stmts.getHardState.get() as { term: number; vote: number; commit_index: number } | undefined;
    this.hardState = hs ? { term: hs.term, vote: hs.vote, commit: hs.commit_index } : { term: 0, vote: 0, commit: 0 };
    const conf = this.stmts.getConf.get() as { log_index: number; conf: string } | undefined;
    this.confIndex = conf?.log_index ?? 0;
    this.confState = conf ? (JSON.parse(conf.conf) as ConfState) : { voters: [], learners: [] };
    const snap = this.stmts.getSnapshot.get() as SnapshotRow | undefined;
    this.snapIndex = snap?.log_index ?? 0;
  }

  /** Runs body in one transaction (one fsync when sync); on failure the cache is reloaded. */
  private write(sync: boolean, body: () => void): void {
    // Not prepared statements: SQLite applies PRAGMA synchronous when it compiles the statement.
    if (!sync) this.db.pragma("synchronous = NORMAL");
    try {
      this.db.transaction(body)();
    } catch (err) {
      this.loadCache();
      throw err;
    } finally {
      if (!sync) this.db.pragma("synchronous = FULL");
    }
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: { ...this.hardState }, confState: cloneConf(this.confState) };
  }

  firstIndex(): number {
    return this.startIndex + 1;
  }

  lastIndex(): number {
    return this.startIndex + this.terms.length - 1;
  }

  term(i: number): number {
    if (i < this.startIndex) throw new RaftError("compacted", `reading term of entry ${i}: compacted (first index ${this.firstIndex()})`);
    const t = this.terms[i - this.startIndex];
    if (t === undefined) throw new RaftError("unavailable", `reading term of entry ${i}: unavailable (last index ${this.lastIndex()})`);
    return t;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo <= this.startIndex) throw new RaftError("compacted", `reading entries [${lo}, ${hi}): compacted (first index ${this.firstIndex()})`);
    if (hi > this.lastIndex() + 1) throw new RaftError("unavailable", `reading entries [${lo}, ${hi}): unavailable (last index ${this.lastIndex()})`);
    const out: Entry[] = [];
    let bytes = 0;
    if (this.tail.length > 0 && lo >= this.tailStart && hi <= this.tailStart + this.tail.length) {
      for (let i = lo; i < hi; i++) {
        const e = this.tail[i - this.tailStart]!;
        bytes += entrySize(e);
        if (out.length > 0 && bytes > maxBytes) break;
        out.push(e);
      }
      return out;
    }
    for (const row of this.stmts.selectRange.iterate(lo, hi) as IterableIterator<EntryRow>) {
      const e: Entry = { index: row.log_index, term: row.term, type: row.type as EntryType, data: toBytes(row.data) };
      bytes += entrySize(e);
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  snapshot(): Snapshot {
    const row = this.stmts.getSnapshot.get() as SnapshotRow | undefined;
    if (!row) return { metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } }, data: new Uint8Array(0) };
    return { metadata: { index: row.log_index, term: row.term, confState: JSON.parse(row.conf) as ConfState }, data: toBytes(row.data) };
  }

  append(entries: Entry[], sync: boolean): void {
    this.write(sync, () => this.appendInTxn(entries));
  }

  setHardState(hs: HardState, sync: boolean): void {
    this.write(sync, () => this.setHardStateInTxn(hs));
  }

  /** Records the conf state in force after applying entry `index` (the driver calls it after a ConfChange). */
  setConfState(index: number, cs: ConfState): void {
    this.write(true, () => this.setConfInTxn(index, cs));
  }

  /**
   * Persists one Ready (snapshot, then entries, then hard state) in ONE transaction with one
   * fsync when sync, so a crash leaves either all of it or none of it.
   */
  persistReady(ready: { entries: Entry[]; hardState?: HardState; snapshot?: Snapshot }, sync = true): void {
    this.write(sync, () => {
      if (ready.snapshot && ready.snapshot.metadata.index > 0) this.applySnapshotInTxn(ready.snapshot);
      this.appendInTxn(ready.entries);
      if (ready.hardState) this.setHardStateInTxn(ready.hardState);
    });
  }

  applySnapshot(snap: Snapshot): void {
    this.write(true, () => this.applySnapshotInTxn(snap));
  }

  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    if (index <= this.snapIndex) throw new RaftError("invalid", `creating snapshot at ${index}: out of date (latest snapshot is at ${this.snapIndex})`);
    if (index > this.lastIndex()) throw new RaftError("unavailable", `creating snapshot at ${index}: beyond last index ${this.lastIndex()}`);
    const term = this.term(index);
    const snap: Snapshot = { metadata: { index, term, confState: cloneConf(confState) }, data };
    const compactTo = index - this.snapshotCatchUpEntries;
    this.write(true, () => {
      this.stmts.putSnapshot.run(index, term, JSON.stringify(confState), toBuffer(data));
      this.snapIndex = index;
      if (index >= this.confIndex) this.setConfInTxn(index, confState);
      if (compactTo > this.startIndex) this.compactInTxn(compactTo);
    });
    return snap;
  }

  compact(compactIndex: number): void {
    if (compactIndex <= this.startIndex) throw new RaftError("compacted", `compacting to ${compactIndex}: already compacted (first index ${this.firstIndex()})`);
    if (compactIndex > this.lastIndex()) throw new RaftError("unavailable", `compacting to ${compactIndex}: beyond last index ${this.lastIndex()}`);
    this.write(true, () => this.compactInTxn(compactIndex));
  }

  private compactInTxn(compactIndex: number): void {
    const term = this.term(compactIndex);
    this.stmts.deleteUpTo.run(compactIndex);
    this.stmts.putStart.run(compactIndex, term);
    this.terms = this.terms.slice(compactIndex - this.startIndex);
    this.startIndex = compactIndex;
    if (compactIndex >= this.tailStart) {
      const drop = Math.min(this.tail.length, compactIndex + 1 - this.tailStart);
      this.tail = this.tail.slice(drop);
      this.tailStart += drop;
    }
  }

  private appendInTxn(entries: Entry[]): void {
    const first = entries[0];
    if (!first) return;
    for (let k = 1; k < entries.length; k++) {
      if (entries[k]!.index !== first.index + k) {
        throw new RaftError("invalid", `appending entries from ${first.index}: indexes are not consecutive at position ${k}`);
      }
    }
    if (first.index > this.lastIndex() + 1) {
      throw new RaftError("invalid", `appending entries from ${first.index}: missing entries after last index ${this.lastIndex()}`);
    }
    // Entries at or below the compaction point are already covered by the snapshot.
    const skip = Math.max(0, this.firstIndex() - first.index);
    if (skip >= entries.length) return;
    const from = first.index + skip;
    if (from <= this.lastIndex()) {
      this.stmts.deleteFrom.run(from);
      this.terms.length = from - this.startIndex;
    }
    for (let k = skip; k < entries.length; k++) {
      const e = entries[k]!;
      this.stmts.insertEntry.run(e.index, e.term, e.type, toBuffer(e.data));
      this.terms.push(e.term);
    }
    this.tailAppend(from, skip === 0 ? entries : entries.slice(skip));
  }

  /** Keeps the in-memory tail equal to the newest entries of the log (a rolled-back write clears it). */
  private tailAppend(from: number, added: Entry[]): void {
    const tailEnd = this.tailStart + this.tail.length;
    if (this.tail.length === 0 || from < this.tailStart || from > tailEnd) {
      this.tail = added.slice();
      this.tailStart = from;
    } else {
      this.tail.length = from - this.tailStart;
      for (const e of added) this.tail.push(e);
    }
    if (this.tail.length > tailEntriesMax) {
      const drop = this.tail.length - tailEntriesMax;
      this.tail = this.tail.slice(drop);
      this.tailStart += drop;
    }
  }

  private setHardStateInTxn(hs: HardState): void {
    this.stmts.putHardState.run(hs.term, hs.vote, hs.commit);
    this.hardState = { ...hs };
  }

  private setConfInTxn(index: number, cs: ConfState): void {
    this.stmts.putConf.run(index, JSON.stringify(cs));
    this.confIndex = index;
    this.confState = cloneConf(cs);
  }

  private applySnapshotInTxn(snap: Snapshot): void {
    const { index, term, confState } = snap.metadata;
    if (index <= this.snapIndex) throw new RaftError("invalid", `applying snapshot at ${index}: out of date (latest snapshot is at ${this.snapIndex})`);
    this.stmts.deleteAll.run();
    this.stmts.putStart.run(index, term);
    this.stmts.putSnapshot.run(index, term, JSON.stringify(confState), toBuffer(snap.data));
    this.startIndex = index;
    this.terms = [term];
    this.tail = [];
    this.snapIndex = index;
    this.setConfInTxn(index, confState);
    // A snapshot is committed by definition; raising commit with it keeps a crash before the
    // next hard state write from reopening with commit below the first index.
    if (this.hardState.commit < index) this.setHardStateInTxn({ ...this.hardState, commit: index });
  }
}

function cloneConf(cs: ConfState): ConfState {
  return { voters: [...cs.voters], learners: [...cs.learners] };
}
