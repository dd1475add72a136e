// Opening a SQLite database (better-sqlite3) with Trivet's settings. Every area opens its
// databases here so that durability settings are decided once. It works from source and from
// the single-executable build alike: there the bundler points better-sqlite3 at the addon that
// cmd/native.ts extracts from the binary.
import Database from "better-sqlite3";

export type SqliteDatabase = Database.Database;

export interface OpenDatabaseOptions {
  /** Open for reading only; the file must exist. */
  readonly?: boolean;
  /** Fail instead of creating a missing file. */
  fileMustExist?: boolean;
  /** How long a statement waits for a lock held by another connection. */
  busyTimeoutMs?: number;
  /**
   * FULL (default) fsyncs the WAL on every commit, so a commit survives power loss. NORMAL is
   * only for data that can be rebuilt (caches), never for Raft logs or replicated state.
   */
  synchronous?: "FULL" | "NORMAL";
}

export const DEFAULT_BUSY_TIMEOUT_MS = 5_000;

export class SqliteOpenError extends Error {
  readonly code = "sqlite_open";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "SqliteOpenError";
  }
}

/** Opens `path` in WAL mode with foreign keys on and a bounded lock wait. */
export function openDatabase(path: string, options: OpenDatabaseOptions = {}): SqliteDatabase {
  const readonly = options.readonly ?? false;
  let db: SqliteDatabase;
  try {
    db = new Database(path, { readonly, fileMustExist: readonly || (options.fileMustExist ?? false), timeout: options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS });
  } catch (err) {
    throw new SqliteOpenError(`opening SQLite database ${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  try {
    // A read-only connection cannot switch the journal mode; it follows the file's.
    if (!readonly && !db.memory) {
      const mode = db.pragma("journal_mode = WAL", { simple: true });
      if (mode !== "wal") throw new Error(`journal_mode is ${String(mode)}, wanted wal`);
    }
    db.pragma(`synchronous = ${options.synchronous ?? "FULL"}`);
    db.pragma("foreign_keys = ON");
  } catch (err) {
    db.close();
    throw new SqliteOpenError(`configuring SQLite database ${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  return db;
}
