// The replicated key/value state as the simulator sees it: apply committed entries (all of
// them, conf changes included, in order), answer reads, snapshot and restore. Commands use the
// real envelope encoding of core/state (clientId + seq for de-duplication, proposer-stamped
// atMs). Two implementations: StateMachineKv (the real core/state StateMachine on an in-memory
// SQLite database, the default) and SimKv (a small in-memory reference with the same contract,
// useful to tell a Raft bug from a state-machine bug: run a failing seed with both).

import { StateMachine } from "../../core/state/state-machine.ts";
import { decodeEnvelope, encodeEnvelope, type Command } from "../../core/state/commands.ts";
import type { CommandResult } from "../../core/state/apply.ts";
import { EntryType, type ConfState, type Entry } from "../../core/raft/types.ts";
import type { KvInput, KvOutput } from "../linearizability/index.ts";

/** A write as the client proposes it; `seq` is reused on retries so the state machine de-duplicates. */
export interface KvCommand {
  clientId: number;
  seq: number;
  atMs: number;
  input: Exclude<KvInput, { op: "get" }>;
}

export interface KvRead {
  value: string | null;
  version: number;
}

export interface ReplicatedKv {
  /** Applies committed entries in order; returns the output of each client command seen, by `commandKey`. */
  apply(entries: Entry[], confState: ConfState | undefined): Map<string, KvOutput>;
  get(key: string): KvRead;
  /** Image of the state at the applied index. */
  snapshot(): Uint8Array;
  /** Replaces the state with the image of a Raft snapshot at (index, term); empty data is the bootstrap snapshot. */
  restore(index: number, term: number, confState: ConfState, data: Uint8Array): void;
  /** A digest of the whole replicated state (not only the keys), for comparing replicas. */
  dump(): string;
  close(): void;
}

export function commandKey(clientId: number | string, seq: number): string {
  return `${clientId}:${seq}`;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

export function encodeCommand(cmd: KvCommand): Uint8Array {
  const i = cmd.input;
  const key = utf8.encode(i.key);
  const command: Command =
    i.op === "put" ? { type: "kv.put", key, value: utf8.encode(i.value) }
    : i.op === "delete" ? { type: "kv.delete", key }
    : { type: "kv.cas", key, expectedVersion: i.expectedVersion, value: utf8.encode(i.value) };
  return encodeEnvelope({ clientId: String(cmd.clientId), seq: cmd.seq, atMs: cmd.atMs, command });
}

/** The client-visible output of a command result; undefined when the outcome is unknown to the state machine. */
export function toOutput(type: Command["type"], result: CommandResult): KvOutput | undefined {
  switch (type) {
    case "kv.put":
      return result.ok ? { op: "put", version: result.version } : undefined;
    case "kv.delete":
      return result.ok ? { op: "delete" } : undefined;
    case "kv.cas":
      if (result.ok) return { op: "cas", result: "ok" };
      return result.code === "version_mismatch" ? { op: "cas", result: "fail" } : undefined;
    default:
      return undefined;
  }
}

/** The real state machine of core/state on an in-memory SQLite database. */
export class StateMachineKv implements ReplicatedKv {
  private sm = StateMachine.open(":memory:");

  apply(entries: Entry[], confState: ConfState | undefined): Map<string, KvOutput> {
    const out = new Map<string, KvOutput>();
    for (const r of this.sm.apply(entries, confState === undefined ? {} : { confState })) {
      if (r.kind !== "command") continue;
      const o = toOutput(r.type, r.result);
      if (o !== undefined) out.set(commandKey(r.clientId, r.seq), o);
    }
    return out;
  }

  get(key: string): KvRead {
    const r = this.sm.get(utf8.encode(key));
    return { value: r.value === null ? null : fromUtf8.decode(r.value), version: r.version };
  }

  snapshot(): Uint8Array {
    return this.sm.snapshot().data;
  }

  restore(index: number, term: number, confState: ConfState, data: Uint8Array): void {
    this.sm.restore(data.length === 0 ? StateMachine.emptySnapshot(index, term, confState) : { index, term, data });
  }

  /** The state machine's own digest: kv rows, de-duplication records, applied index and membership. */
  dump(): string {
    return this.sm.checksum();
  }

  close(): void {
    this.sm.close();
  }
}

interface SimKvState {
  applied: number;
  kv: Record<string, { value: string; version: number }>;
  /** Outputs by "clientId:seq": a retried command gets the answer of its first application. */
  requests: Record<string, KvOutput>;
}

/** In-memory reference implementation of the same contract. */
export class SimKv implements ReplicatedKv {
  private state: SimKvState = { applied: 0, kv: {}, requests: {} };

  apply(entries: Entry[]): Map<string, KvOutput> {
    const out = new Map<string, KvOutput>();
    for (const e of entries) {
      if (e.index <= this.state.applied) continue;
      this.state.applied = e.index;
      if (e.type !== EntryType.Normal || e.data.length === 0) continue;
      const env = decodeEnvelope(e.data);
      const key = commandKey(env.clientId, env.seq);
      const output = this.state.requests[key] ?? this.execute(env.command);
      this.state.requests[key] = output;
      out.set(key, output);
    }
    return out;
  }

  private execute(c: Command): KvOutput {
    if (c.type !== "kv.put" && c.type !== "kv.delete" && c.type !== "kv.cas") throw new Error(`applying ${c.type}: not a key/value command`);
    const key = fromUtf8.decode(c.key);
    const cur = this.state.kv[key];
    switch (c.type) {
      case "kv.put": {
        const version = (cur?.version ?? 0) + 1;
        this.state.kv[key] = { value: fromUtf8.decode(c.value), version };
        return { op: "put", version };
      }
      case "kv.delete":
        delete this.state.kv[key];
        return { op: "delete" };
      case "kv.cas":
        if ((cur?.version ?? 0) !== c.expectedVersion) return { op: "cas", result: "fail" };
        this.state.kv[key] = { value: fromUtf8.decode(c.value), version: c.expectedVersion + 1 };
        return { op: "cas", result: "ok" };
    }
  }

  get(key: string): KvRead {
    const cur = this.state.kv[key];
    return { value: cur?.value ?? null, version: cur?.version ?? 0 };
  }

  snapshot(): Uint8Array {
    return utf8.encode(JSON.stringify(this.state));
  }

  restore(index: number, _term: number, _confState: ConfState, data: Uint8Array): void {
    this.state = data.length === 0 ? { applied: index, kv: {}, requests: {} } : (JSON.parse(fromUtf8.decode(data)) as SimKvState);
  }

  dump(): string {
    return JSON.stringify(Object.keys(this.state.kv).sort().map((k) => [k, this.state.kv[k]!.value, this.state.kv[k]!.version]));
  }

  close(): void {}
}
