// A tiny in-memory network of RaftNodes for unit tests (paper.test.ts, node.test.ts): process
// Readys the way a driver must (persist → send → apply → advance), deliver messages with an
// optional filter, and run until quiet. Deterministic: no clock, no randomness.

import { RaftNode } from "./node.ts";
import { MemoryStorage } from "./memory-storage.ts";
import { decodeConfChange } from "./confchange.ts";
import { EntryType, type Entry, type Message, type NodeId, type RaftConfig } from "./types.ts";

/** Rounds before stabilize() declares the network stuck. */
const maxStabilizeRounds = 500;

export interface NetNode {
  node: RaftNode;
  storage: MemoryStorage;
  config: RaftConfig;
  applied: Entry[];
}

export class TestNet {
  readonly nodes = new Map<NodeId, NetNode>();
  readonly inbox = new Map<NodeId, Message[]>();
  /** Every message that was sent (after the filter), in order. */
  readonly sent: Message[] = [];
  /** Return false to drop a message. */
  filter: (m: Message) => boolean = () => true;

  constructor(ids: NodeId[], overrides: Partial<RaftConfig> = {}, jitter: (id: NodeId) => number = () => 0) {
    for (const id of ids) {
      const storage = new MemoryStorage();
      RaftNode.bootstrap(storage, ids);
      this.add(id, storage, overrides, jitter(id));
    }
  }

  add(id: NodeId, storage: MemoryStorage, overrides: Partial<RaftConfig> = {}, jitter = 0): NetNode {
    const config: RaftConfig = {
      id, electionTick: 10, heartbeatTick: 1, storage, applied: 0, maxSizePerMsgBytes: 1 << 20,
      maxInflightMsgs: 256, maxUncommittedEntriesBytes: 1 << 30, maxCommittedSizePerReadyBytes: 1 << 30,
      checkQuorum: false, preVote: false, rand: { intn: (n: number) => Math.min(jitter, n - 1) }, ...overrides,
    };
    const n: NetNode = { node: new RaftNode(config), storage, config, applied: [] };
    this.nodes.set(id, n);
    this.inbox.set(id, []);
    return n;
  }

  get(id: NodeId): RaftNode {
    return this.nodes.get(id)!.node;
  }

  processReady(id: NodeId): Message[] {
    const n = this.nodes.get(id)!;
    if (!n.node.hasReady()) return [];
    const rd = n.node.ready();
    if (rd.snapshot) n.storage.applySnapshot(rd.snapshot);
    n.storage.append(rd.entries, rd.mustSync);
    if (rd.hardState) n.storage.setHardState(rd.hardState, rd.mustSync);
    const out: Message[] = [];
    for (const m of rd.messages) {
      if (!this.filter(m)) continue;
      this.sent.push(m);
      this.inbox.get(m.to)?.push(m);
      out.push(m);
    }
    if (rd.snapshot) n.applied = [];
    for (const e of rd.committedEntries) {
      if (e.type === EntryType.ConfChange) n.node.applyConfChange(decodeConfChange(e.data));
      n.applied.push(e);
    }
    n.node.advance(rd);
    return out;
  }

  deliver(id: NodeId): number {
    const box = this.inbox.get(id) ?? [];
    this.inbox.set(id, []);
    for (const m of box) this.nodes.get(id)?.node.step(m);
    return box.length;
  }

  stabilize(): void {
    for (let round = 0; round < maxStabilizeRounds; round++) {
      let progressed = false;
      for (const id of this.nodes.keys()) if (this.processReady(id).length > 0 || this.nodes.get(id)!.node.hasReady()) progressed = true;
      for (const id of this.nodes.keys()) if (this.deliver(id) > 0) progressed = true;
      if (!progressed) return;
    }
    throw new Error(`network not quiet after ${maxStabilizeRounds} rounds`);
  }

  /** Application payloads applied by `id`, as strings (no-ops and conf changes skipped). */
  appliedData(id: NodeId): string[] {
    return this.nodes.get(id)!.applied.filter((e) => e.type === EntryType.Normal && e.data.length > 0).map((e) => new TextDecoder().decode(e.data));
  }

  dropAll(): void {
    for (const id of this.inbox.keys()) this.inbox.set(id, []);
  }
}

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
