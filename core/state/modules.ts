// State modules: how an area (cluster membership and PKI, users and auth, VMs, storage…) adds
// its tables and its commands to the replicated state without editing the core files. A
// module brings numbered migrations (versions reserved in migrations.ts, so the one schema
// history stays append-only and global) and named commands, each validated before proposal
// and applied deterministically inside the batch transaction. Commands travel as the "ext"
// command of commands.ts: the name plus a JSON payload (bytes as {"$b64": "..."}).
import type Database from "better-sqlite3";
import type { CommandResult } from "./apply.ts";
import { CommandError } from "./errors.ts";
import type { Migration } from "./migrations.ts";

export interface ApplyContext {
  db: Database.Database;
  /** Raft index of the entry being applied (a deterministic, unique, increasing id source). */
  index: number;
  /** Proposer-stamped time of the command (apply never reads a clock). */
  atMs: number;
  clientId: string;
  /** A prepared statement, cached per database connection. */
  prepare(sql: string): Database.Statement;
}

export interface CommandSpec<P = unknown> {
  /**
   * Checks and normalizes a payload before it is proposed (and again when decoded); throws
   * CommandError naming the field and the reason. Must be pure.
   */
  validate(payload: unknown): P;
  /** Applies the command; runs inside the batch transaction; must be deterministic. */
  apply(ctx: ApplyContext, payload: P): CommandResult;
}

export interface StateModule {
  name: string;
  migrations: readonly Migration[];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each command has its own payload type
  commands: Readonly<Record<string, CommandSpec<any>>>;
}

/** Looks up command specs by name across the registered modules. */
export class ModuleRegistry {
  private readonly specs = new Map<string, CommandSpec>();

  constructor(readonly modules: readonly StateModule[]) {
    for (const m of modules) {
      for (const [name, spec] of Object.entries(m.commands)) {
        if (this.specs.has(name)) throw new Error(`state module ${m.name}: command ${name} is defined twice`);
        this.specs.set(name, spec);
      }
    }
  }

  spec(name: string): CommandSpec {
    const s = this.specs.get(name);
    if (!s) throw new CommandError(name, "type", `is not a known command (known: ${[...this.specs.keys()].join(", ") || "none"})`);
    return s;
  }

  migrations(): Migration[] {
    return this.modules.flatMap((m) => m.migrations);
  }
}

const B64 = "$b64";

/** JSON with byte arrays kept as bytes. */
export function encodePayload(payload: unknown): string {
  return JSON.stringify(payload, (_k, v: unknown) => {
    if (v instanceof Uint8Array) return { [B64]: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64") };
    return v;
  });
}

export function decodePayload(text: string): unknown {
  return JSON.parse(text, (_k, v: unknown) => {
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      const o = v as Record<string, unknown>;
      const keys = Object.keys(o);
      if (keys.length === 1 && keys[0] === B64 && typeof o[B64] === "string") return new Uint8Array(Buffer.from(o[B64], "base64"));
    }
    return v;
  });
}

const readStatements = new WeakMap<Database.Database, Map<string, Database.Statement>>();

/**
 * A prepared statement for the read helpers of state modules, cached per connection: reads
 * run on every API request, and preparing the same SQL each time costs more than running it.
 * (A restored snapshot is a new connection, so its statements are prepared afresh.)
 */
export function prepared(db: Database.Database, sql: string): Database.Statement {
  let byConnection = readStatements.get(db);
  if (!byConnection) {
    byConnection = new Map();
    readStatements.set(db, byConnection);
  }
  let stmt = byConnection.get(sql);
  if (!stmt) {
    stmt = db.prepare(sql);
    byConnection.set(sql, stmt);
  }
  return stmt;
}
