// Raft's safety properties, checked by the simulator as the run goes (Raft paper, figure 3):
// election safety, log matching, leader completeness and state-machine safety. The checker sees
// every write to every simulated disk and every applied entry, so a violation is caught at the
// step that causes it. Linearizability of the client history and liveness are checked at the
// end of a run (see cluster.ts).

import { RaftError, type Entry, type LogStore, type NodeId } from "../../core/raft/types.ts";

export class InvariantViolation extends Error {
  constructor(
    readonly code: "election_safety" | "log_matching" | "leader_completeness" | "state_machine_safety" | "linearizability" | "liveness" | "divergence" | "crash",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "InvariantViolation";
  }
}

export function entryHash(e: Entry): string {
  let h = 0x811c9dc5 ^ e.type;
  for (let i = 0; i < e.data.length; i++) {
    h ^= e.data[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return `${e.type}:${e.data.length}:${(h >>> 0).toString(16)}`;
}

/** Term of entry i in `store`, or undefined when compacted or beyond the end. */
export function termAt(store: LogStore, i: number): number | undefined {
  try {
    return store.term(i);
  } catch (err) {
    if (err instanceof RaftError && (err.code === "compacted" || err.code === "unavailable")) return undefined;
    throw err;
  }
}

export class SafetyChecker {
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** "index:term" → hash of the entry any log ever held there (log matching, part 1). */
  private readonly entryAt = new Map<string, string>();
  /** "index:term" → term of the entry before it in that log (part 2: equal prefixes, by induction). */
  private readonly prevTermAt = new Map<string, number>();
  /** index → entry applied there by any state machine: committed, never to change. */
  private readonly committed = new Map<number, { term: number; hash: string; by: NodeId }>();
  maxCommittedIndex = 0;
  leadersSeen = 0;

  /** Called whenever a node reports itself leader of `term` (cheap when already seen). */
  onLeader(id: NodeId, term: number, store: LogStore): void {
    const known = this.leaderOfTerm.get(term);
    if (known === id) return;
    if (known !== undefined) {
      throw new InvariantViolation("election_safety", `checking election safety: nodes ${known} and ${id} were both leader of term ${term}`);
    }
    this.leaderOfTerm.set(term, id);
    this.leadersSeen++;
    this.checkLeaderLog(id, term, store);
  }

  /** Every committed entry must be in the new leader's log (those before its log start are in its snapshot). */
  private checkLeaderLog(id: NodeId, term: number, store: LogStore): void {
    const last = store.lastIndex();
    if (last < this.maxCommittedIndex) {
      throw new InvariantViolation(
        "leader_completeness",
        `checking leader completeness: node ${id} became leader of term ${term} with last index ${last}, but index ${this.maxCommittedIndex} is committed`,
      );
    }
    for (let i = Math.max(store.firstIndex(), 1); i <= this.maxCommittedIndex; i++) this.checkLeaderHas(id, term, store, i);
  }

  private checkLeaderHas(id: NodeId, term: number, store: LogStore, index: number): void {
    const c = this.committed.get(index);
    if (c === undefined || c.term >= term) return;
    const t = termAt(store, index);
    if (t === undefined) return; // compacted into the leader's snapshot
    if (t !== c.term) {
      throw new InvariantViolation(
        "leader_completeness",
        `checking leader completeness: index ${index} was committed with term ${c.term} (applied by node ${c.by}), but leader ${id} of term ${term} holds term ${t} there`,
      );
    }
  }

  /** Called with entries as a node writes them to its disk. */
  onAppend(id: NodeId, entries: readonly Entry[], store: LogStore): void {
    for (const e of entries) {
      const key = `${e.index}:${e.term}`;
      const hash = entryHash(e);
      const seen = this.entryAt.get(key);
      if (seen === undefined) this.entryAt.set(key, hash);
      else if (seen !== hash) {
        throw new InvariantViolation("log_matching", `checking log matching: node ${id} wrote a different entry at index ${e.index} term ${e.term} than another node`);
      }
      const prev = termAt(store, e.index - 1);
      if (prev === undefined) continue;
      const seenPrev = this.prevTermAt.get(key);
      if (seenPrev === undefined) this.prevTermAt.set(key, prev);
      else if (seenPrev !== prev) {
        throw new InvariantViolation(
          "log_matching",
          `checking log matching: logs agree at index ${e.index} term ${e.term} but node ${id} has term ${prev} before it where another log has term ${seenPrev}`,
        );
      }
    }
  }

  /**
   * Called for each entry a node applies. `leaders` are the nodes that currently think they lead:
   * a newly committed entry must already be in the log of every leader of a later term.
   */
  onApply(id: NodeId, e: Entry, leaders: readonly { id: NodeId; term: number; store: LogStore }[]): void {
    const hash = entryHash(e);
    const c = this.committed.get(e.index);
    if (c !== undefined) {
      if (c.term !== e.term || c.hash !== hash) {
        throw new InvariantViolation(
          "state_machine_safety",
          `checking state-machine safety: node ${id} applied term ${e.term} at index ${e.index}, node ${c.by} applied term ${c.term} there (same entry: ${c.hash === hash})`,
        );
      }
      return;
    }
    this.committed.set(e.index, { term: e.term, hash, by: id });
    if (e.index > this.maxCommittedIndex) this.maxCommittedIndex = e.index;
    for (const l of leaders) this.checkLeaderHas(l.id, l.term, l.store, e.index);
  }

  /** Applying a snapshot at `index` stands for applying everything up to it. */
  onApplySnapshot(id: NodeId, index: number, term: number): void {
    const c = this.committed.get(index);
    if (c !== undefined && c.term !== term) {
      throw new InvariantViolation(
        "state_machine_safety",
        `checking state-machine safety: node ${id} installed a snapshot at index ${index} term ${term}, but term ${c.term} was applied there`,
      );
    }
  }
}
