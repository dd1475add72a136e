// The replicated key/value state the simulator drives, as seen by the sim: apply committed
// entries, answer reads, snapshot and restore. `SimKv` is a small in-memory reference
// implementation with the same contract as core/state's StateMachine (de-duplication by
// clientId+seq, versions per key, entries at or below the applied index skipped).

import { EntryType, type Entry } from "../../core/raft/types.ts";
import type { KvInput, KvOutput } from "../linearizability/index.ts";

/** A write as the client proposes it; `seq` is reused on retries so the state machine de-duplicates. */
export interface KvCommand {
  clientId: number;
  seq: number;
  input: KvInput;
}

export interface KvRead {
  value: string | null;
  version: number;
}

export interface ReplicatedKv {
  /** Applies committed entries in order; returns the output of each client command it saw, by `commandKey`. */
  apply(entries: readonly Entry[]): Map<string, KvOutput>;
  get(key: string): KvRead;
  snapshot(): Uint8Array;
  restore(data: Uint8Array): void;
  readonly appliedIndex: number;
  /** Every key with its value, for comparing replicas. */
  dump(): string;
  close(): void;
}

export function commandKey(clientId: number, seq: number): string {
  return `${clientId}:${seq}`;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeCommand(cmd: KvCommand): Uint8Array {
  return encoder.encode(JSON.stringify(cmd));
}

export function decodeCommand(data: Uint8Array): KvCommand {
  return JSON.parse(decoder.decode(data)) as KvCommand;
}

interface State {
  applied: number;
  kv: Record<string, { value: string; version: number }>;
  /** Last seq applied per client and its output: a retried command gets the same answer. */
  sessions: Record<string, { seq: number; output: KvOutput }>;
}

export class SimKv implements ReplicatedKv {
  private state: State = { applied: 0, kv: {}, sessions: {} };

  get appliedIndex(): number {
    return this.state.applied;
  }

  apply(entries: readonly Entry[]): Map<string, KvOutput> {
    const out = new Map<string, KvOutput>();
    for (const e of entries) {
      if (e.index <= this.state.applied) continue;
      this.state.applied = e.index;
      if (e.type !== EntryType.Normal || e.data.length === 0) continue;
      const cmd = decodeCommand(e.data);
      const session = this.state.sessions[cmd.clientId];
      if (session !== undefined && cmd.seq <= session.seq) {
        if (cmd.seq === session.seq) out.set(commandKey(cmd.clientId, cmd.seq), session.output);
        continue;
      }
      const output = this.execute(cmd.input);
      this.state.sessions[cmd.clientId] = { seq: cmd.seq, output };
      out.set(commandKey(cmd.clientId, cmd.seq), output);
    }
    return out;
  }

  private execute(input: KvInput): KvOutput {
    const cur = this.state.kv[input.key];
    switch (input.op) {
      case "put": {
        const version = (cur?.version ?? 0) + 1;
        this.state.kv[input.key] = { value: input.value, version };
        return { op: "put", version };
      }
      case "delete":
        delete this.state.kv[input.key];
        return { op: "delete" };
      case "cas":
        if ((cur?.version ?? 0) !== input.expectedVersion) return { op: "cas", result: "fail" };
        this.state.kv[input.key] = { value: input.value, version: input.expectedVersion + 1 };
        return { op: "cas", result: "ok" };
      case "get":
        return { op: "get", value: cur?.value ?? null, version: cur?.version ?? 0 };
    }
  }

  get(key: string): KvRead {
    const cur = this.state.kv[key];
    return { value: cur?.value ?? null, version: cur?.version ?? 0 };
  }

  snapshot(): Uint8Array {
    return encoder.encode(JSON.stringify(this.state));
  }

  /** An empty image is the bootstrap snapshot: the empty state. */
  restore(data: Uint8Array): void {
    this.state = data.length === 0 ? { applied: 0, kv: {}, sessions: {} } : (JSON.parse(decoder.decode(data)) as State);
  }

  dump(): string {
    return JSON.stringify(Object.keys(this.state.kv).sort().map((k) => [k, this.state.kv[k]]));
  }

  close(): void {}
}
