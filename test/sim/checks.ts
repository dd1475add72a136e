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
  /**
   * index → the entry's term and the term of the leader that first counted it committed.
   * Leader completeness (Raft §5.4) binds leaders of later terms than the commit term only: a
   * stale leader of an older term may legitimately lack entries committed after it was elected.
   */
  private readonly commits = new Map<number, { entryTerm: number; commitTerm: number }>();
  /** Highest index any leader has counted committed. */
  maxCommittedIndex = 0;
  /** index → entry applied there by any state machine: it must never differ. */
  private readonly applied = new Map<number, { term: number; hash: string; by: NodeId }>();
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
    for (let i = Math.max(store.firstIndex(), 1); i <= this.maxCommittedIndex; i++) this.checkLeaderHas(id, term, store, i);
  }

  /** Entries before the leader's log start are in its snapshot, which holds committed state only. */
  private checkLeaderHas(id: NodeId, term: number, store: LogStore, index: number): void {
    const c = this.commits.get(index);
    if (c === undefined || c.commitTerm >= term || index < store.firstIndex()) return;
    const t = termAt(store, index);
    if (t !== c.entryTerm) {
      const held = t === undefined ? `its log ends at ${store.lastIndex()}` : `it holds term ${t} there`;
      throw new InvariantViolation(
        "leader_completeness",
        `checking leader completeness: index ${index} (term ${c.entryTerm}) was committed in term ${c.commitTerm}, but node ${id} is leader of term ${term} and ${held}`,
      );
    }
  }

  /**
   * Called with a node's new hard state: everything up to `commit` is committed in a term ≤
   * `term`, and must already be in the log of every leader of a later term.
   */
  onCommit(
    id: NodeId, term: number, commit: number, store: LogStore, unpersisted: readonly Entry[],
    leaders: readonly { id: NodeId; term: number; store: LogStore }[],
  ): void {
    if (commit <= this.maxCommittedIndex) return;
    const from = this.maxCommittedIndex + 1;
    // Entries of the same Ready are not on the disk yet and replace its tail from their first index.
    const firstUnpersisted = unpersisted[0]?.index ?? Infinity;
    for (let i = from; i <= commit; i++) {
      const entryTerm = i >= firstUnpersisted ? unpersisted[i - firstUnpersisted]?.term : termAt(store, i);
      if (entryTerm !== undefined) this.commits.set(i, { entryTerm, commitTerm: term });
    }
    this.maxCommittedIndex = commit;
    for (const l of leaders) {
      if (l.id === id) continue;
      for (let i = from; i <= commit; i++) this.checkLeaderHas(l.id, l.term, l.store, i);
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

  /** Called for each entry a node applies: the same entry at each index everywhere, and a committed one. */
  onApply(id: NodeId, e: Entry): void {
    const c = this.commits.get(e.index);
    if (c === undefined && e.index > this.maxCommittedIndex) {
      throw new InvariantViolation("state_machine_safety", `checking state-machine safety: node ${id} applied index ${e.index}, which no leader has committed`);
    }
    if (c !== undefined && c.entryTerm !== e.term) {
      throw new InvariantViolation(
        "state_machine_safety",
        `checking state-machine safety: node ${id} applied term ${e.term} at index ${e.index}, but term ${c.entryTerm} was committed there`,
      );
    }
    const hash = entryHash(e);
    const a = this.applied.get(e.index);
    if (a === undefined) {
      this.applied.set(e.index, { term: e.term, hash, by: id });
      return;
    }
    if (a.term !== e.term || a.hash !== hash) {
      throw new InvariantViolation(
        "state_machine_safety",
        `checking state-machine safety: node ${id} applied term ${e.term} at index ${e.index}, node ${a.by} applied term ${a.term} there (same entry: ${a.hash === hash})`,
      );
    }
  }

  /** Applying a snapshot at `index` stands for applying everything up to it. */
  onApplySnapshot(id: NodeId, index: number, term: number): void {
    const a = this.applied.get(index);
    const c = this.commits.get(index);
    const other = a?.term ?? c?.entryTerm;
    if (other !== undefined && other !== term) {
      throw new InvariantViolation(
        "state_machine_safety",
        `checking state-machine safety: node ${id} installed a snapshot at index ${index} term ${term}, but term ${other} was applied or committed there`,
      );
    }
  }
}
