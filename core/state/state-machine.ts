// The replicated state machine: every node applies committed Raft entries, in order, to its own
// state.db, one synchronous transaction per batch; it serves local reads (with the applied index)
// and makes/restores snapshots that are consistent images of state.db at the applied index.
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { EntryType } from "../raft/types.ts";
import type { ConfState, Entry } from "../raft/types.ts";
import { applyEnvelope, prepareApply } from "./apply.ts";
import type { ApplyStatements, CommandResult } from "./apply.ts";
import { decodeEnvelope } from "./commands.ts";
import type { CommandType, NodeRole } from "./commands.ts";
import { CommandError, StateError } from "./errors.ts";
import { openDatabase } from "../sqlite.ts";
import { migrate } from "./migrations.ts";

/** Upper bound on rows returned by one range() read. */
export const rangeRowsMax = 1000;

export type ApplyResult =
  /** At or below the applied index: already applied before (re-delivery after a restart). */
  | { index: number; term: number; kind: "skipped" }
  | { index: number; term: number; kind: "noop" }
  | { index: number; term: number; kind: "conf_change" }
  | { index: number; term: number; kind: "command"; clientId: string; seq: number; type: CommandType; result: CommandResult; duplicate: boolean }
  /** Entry data that does not decode as a command: applied as a no-op, the same on every replica. */
  | { index: number; term: number; kind: "rejected"; reason: string };

export interface StateSnapshot {
  index: number;
  term: number;
  data: Uint8Array;
}

export interface KvRead {
  value: Uint8Array | null;
  /** 0 when the key does not exist. */
  version: number;
  appliedIndex: number;
}

export interface NodeRow {
  id: number;
  name: string;
  address: string;
  role: NodeRole;
  addedIndex: number;
  heartbeatAtMs: number | null;
}

interface Meta { applied_index: number; applied_term: number; conf_state: string }

function toBytes(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** Smallest key greater than every key with this prefix, or null when there is none. */
function prefixEnd(prefix: Uint8Array): Buffer | null {
  const end = Buffer.from(prefix);
  for (let k = end.length - 1; k >= 0; k--) {
    if (end[k]! < 0xff) {
      end[k]! += 1;
      return end.subarray(0, k + 1);
    }
  }
  return null;
}

/**
 * Durability: a file-backed state.db runs WAL with synchronous = NORMAL: a power loss may lose
 * the last applied batches, but never corrupts the database, and the Raft log (fsynced) is the
 * durable record. At restart the driver passes `appliedIndex` (read from meta, written in the
 * same transaction as the batch) to Raft as `applied`, so every entry after it is delivered and
 * applied again; entries at or below it are skipped, so re-delivery is harmless. If the lost
 * batches are already compacted out of the log, the Raft snapshot (which covers them) must be
 * restored first: the driver does so when the stored snapshot is ahead of appliedIndex.
 */
export class StateMachine {
  private db: Database.Database;
  private appliedCache: number | undefined;
  private st!: ReturnType<StateMachine["prepare"]>;

  private constructor(private readonly file: string | null, db: Database.Database) {
    this.db = db;
    this.bind(db);
  }

  /** Opens (creating and migrating as needed) state.db at `file`, or ":memory:" for the simulator. */
  static open(file: string): StateMachine {
    return new StateMachine(file === ":memory:" ? null : file, StateMachine.openDb(file));
  }

  private static openDb(file: string): Database.Database {
    // NORMAL, not FULL, is safe here because state.db is derived data: see the class comment.
    const db = openDatabase(file, { synchronous: "NORMAL" });
    try {
      migrate(db);
      return db;
    } catch (err) {
      db.close();
      throw err;
    }
  }

  private bind(db: Database.Database): void {
    this.appliedCache = undefined;
    this.db = db;
    this.st = this.prepare(db);
  }

  private prepare(db: Database.Database) {
    const apply: ApplyStatements = prepareApply(db);
    return {
      apply,
      meta: db.prepare("SELECT applied_index, applied_term, conf_state FROM meta WHERE id = 1"),
      setApplied: db.prepare("UPDATE meta SET applied_index = ?, applied_term = ? WHERE id = 1"),
      setConf: db.prepare("UPDATE meta SET conf_state = ? WHERE id = 1"),
      get: db.prepare("SELECT value, version FROM kv WHERE key = ?"),
      rangeFrom: db.prepare("SELECT key, value, version FROM kv WHERE key >= ? ORDER BY key LIMIT ?"),
      rangeBetween: db.prepare("SELECT key, value, version FROM kv WHERE key >= ? AND key < ? ORDER BY key LIMIT ?"),
      nodes: db.prepare("SELECT id, name, address, role, added_index AS addedIndex, heartbeat_at_ms AS heartbeatAtMs FROM nodes ORDER BY id"),
      batch: db.transaction((entries: Entry[], confState: ConfState | undefined) => this.applyInTxn(entries, confState)),
    };
  }

  close(): void {
    this.db.close();
  }

  private meta(): Meta {
    return this.st.meta.get() as Meta;
  }

  /** Cached: read on every API request; moved only by apply and restore (bind). */
  get appliedIndex(): number {
    this.appliedCache ??= this.meta().applied_index;
    return this.appliedCache;
  }

  get appliedTerm(): number {
    return this.meta().applied_term;
  }

  /** The conf state recorded with the last applied batch that carried one. */
  confState(): ConfState {
    return JSON.parse(this.meta().conf_state) as ConfState;
  }

  /**
   * Applies a batch of committed entries in ONE transaction; entries at or below the applied
   * index are skipped. `confState`, when given, is the membership in force after the last entry
   * of the batch (the driver computes it from the ConfChange entries) and is stored with it.
   */
  apply(entries: Entry[], options: { confState?: ConfState } = {}): ApplyResult[] {
    this.appliedCache = undefined;
    return this.st.batch(entries, options.confState);
  }

  private applyInTxn(entries: Entry[], confState: ConfState | undefined): ApplyResult[] {
    let { applied_index: applied, applied_term: appliedTerm } = this.meta();
    const results: ApplyResult[] = [];
    for (const e of entries) {
      if (e.index <= applied) {
        results.push({ index: e.index, term: e.term, kind: "skipped" });
        continue;
      }
      if (e.index !== applied + 1) {
        throw new StateError("apply_out_of_order", `applying entry ${e.index}: the next entry to apply is ${applied + 1}`);
      }
      results.push(this.applyEntry(e));
      applied = e.index;
      appliedTerm = e.term;
    }
    this.st.setApplied.run(applied, appliedTerm);
    if (confState) this.st.setConf.run(JSON.stringify({ voters: confState.voters, learners: confState.learners }));
    return results;
  }

  private applyEntry(e: Entry): ApplyResult {
    const at = { index: e.index, term: e.term };
    if (e.type === EntryType.ConfChange) return { ...at, kind: "conf_change" };
    if (e.data.byteLength === 0) return { ...at, kind: "noop" };
    let env;
    try {
      env = decodeEnvelope(e.data);
    } catch (err) {
      if (err instanceof CommandError || err instanceof TypeError) return { ...at, kind: "rejected", reason: err.message };
      throw err;
    }
    const { result, duplicate } = applyEnvelope(this.st.apply, env, e.index);
    return { ...at, kind: "command", clientId: env.clientId, seq: env.seq, type: env.command.type, result, duplicate };
  }

  get(key: Uint8Array): KvRead {
    const row = this.st.get.get(Buffer.from(key)) as { value: Buffer; version: number } | undefined;
    return { value: row ? toBytes(row.value) : null, version: row?.version ?? 0, appliedIndex: this.appliedIndex };
  }

  /** Keys starting with `prefix` in byte order, at most `limit` (≤ rangeRowsMax) of them. */
  range(prefix: Uint8Array, limit: number): { items: { key: Uint8Array; value: Uint8Array; version: number }[]; appliedIndex: number } {
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > rangeRowsMax) {
      throw new StateError("read_invalid", `range read: limit must be an integer from 1 to ${rangeRowsMax} (rangeRowsMax), got ${limit}`);
    }
    const end = prefixEnd(prefix);
    const start = Buffer.from(prefix);
    const rows = (end ? this.st.rangeBetween.all(start, end, limit) : this.st.rangeFrom.all(start, limit)) as { key: Buffer; value: Buffer; version: number }[];
    return { items: rows.map((r) => ({ key: toBytes(r.key), value: toBytes(r.value), version: r.version })), appliedIndex: this.appliedIndex };
  }

  /**
   * Runs a read-only query of a state module against the local replica; the result comes with
   * the applied index it reflects. The function must not write (apply is the only writer).
   */
  read<T>(fn: (db: Database.Database) => T): { value: T; appliedIndex: number } {
    return { value: fn(this.db), appliedIndex: this.appliedIndex };
  }

  nodes(): NodeRow[] {
    return this.st.nodes.all() as NodeRow[];
  }

  /** A digest of the replicated content (kv, nodes, de-duplication records, applied index and conf state). */
  checksum(): string {
    const h = createHash("sha256");
    const tables = ["kv ORDER BY key", "nodes ORDER BY id", "client_requests ORDER BY client_id, seq", "meta"];
    for (const t of tables) {
      h.update(`table ${t}\n`);
      for (const row of this.db.prepare(`SELECT * FROM ${t}`).raw().iterate() as IterableIterator<unknown[]>) {
        for (const v of row) h.update(Buffer.isBuffer(v) ? `b${v.length}:${v.toString("hex")};` : `${typeof v}:${String(v)};`);
        h.update("\n");
      }
    }
    return h.digest("hex");
  }

  /**
   * A consistent image of state.db at the applied index, made with db.serialize(): it runs
   * synchronously on the connection that applies, so no batch can interleave, it works the
   * same for ":memory:" and files, and it reads WAL frames through the pager (the image is
   * current, not the last checkpoint). The backup API would be asynchronous and let applies
   * interleave; VACUUM INTO would cost a temporary file. Images are a few MB.
   */
  snapshot(): StateSnapshot {
    const { applied_index: index, applied_term: term } = this.meta();
    const data = this.db.serialize();
    // File format bytes 18-19 say "WAL" (2) for a WAL database; an image marked WAL cannot be
    // opened in memory, so images are marked rollback-journal (1). open() sets WAL again.
    data[18] = 1;
    data[19] = 1;
    return { index, term, data: toBytes(data) };
  }

  /**
   * The image of an empty state at (index, term): what a Raft snapshot with no data stands for
   * (a new group is bootstrapped with one, carrying only its first configuration).
   */
  static emptySnapshot(index: number, term: number, confState: ConfState): StateSnapshot {
    const sm = StateMachine.open(":memory:");
    try {
      sm.st.setApplied.run(index, term);
      sm.st.setConf.run(JSON.stringify({ voters: confState.voters, learners: confState.learners }));
      return sm.snapshot();
    } finally {
      sm.close();
    }
  }

  /** Replaces the whole state with a snapshot image (ahead of or behind the current state). */
  restore(snap: StateSnapshot): void {
    const image = StateMachine.checkImage(snap);
    if (this.file === null) {
      migrate(image);
      this.db.close();
      this.bind(image);
      return;
    }
    image.close();
    this.replaceFile(snap.data);
  }

  private static checkImage(snap: StateSnapshot): Database.Database {
    let image: Database.Database | undefined;
    try {
      image = new Database(Buffer.from(snap.data));
      const meta = image.prepare("SELECT applied_index, applied_term FROM meta WHERE id = 1").get() as Meta | undefined;
      if (meta?.applied_index !== snap.index || meta.applied_term !== snap.term) {
        throw new Error(`the image is at ${meta?.applied_index}/${meta?.applied_term}, the snapshot says ${snap.index}/${snap.term}`);
      }
    } catch (err) {
      image?.close();
      throw new StateError("snapshot_invalid", `restoring snapshot at ${snap.index}: ${(err as Error).message}`, { cause: err });
    }
    return image;
  }

  /** Writes the image to a temp file, fsyncs it, renames it over state.db and reopens. */
  private replaceFile(data: Uint8Array): void {
    const file = this.file!;
    const tmp = `${file}.restore-tmp`;
    const fd = fs.openSync(tmp, "w");
    try {
      fs.writeSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    this.db.pragma("wal_checkpoint(TRUNCATE)");
    this.db.close();
    // A WAL left beside the new file would be replayed into it: remove it before the rename.
    for (const side of [`${file}-wal`, `${file}-shm`]) fs.rmSync(side, { force: true });
    fs.renameSync(tmp, file);
    const dirFd = fs.openSync(path.dirname(file), "r");
    try {
      fs.fsyncSync(dirFd);
    } finally {
      fs.closeSync(dirFd);
    }
    this.bind(StateMachine.openDb(file));
  }
}
