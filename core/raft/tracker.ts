// The leader's and candidate's bookkeeping over the current configuration: the voters and
// learners, one Progress per member, the votes of an election, and the quorum arithmetic
// (commit index = the highest index a majority of voters has; learners never count).

import { Progress } from "./progress.ts";
import type { ConfState, NodeId } from "./types.ts";

export type VoteResult = "won" | "lost" | "pending";

export class ProgressTracker {
  voters = new Set<NodeId>();
  learners = new Set<NodeId>();
  readonly progress = new Map<NodeId, Progress>();
  private votes = new Map<NodeId, boolean>();
  private matchScratch: number[] = [];
  private memberList: NodeId[] = [];

  constructor(readonly maxInflightMsgs: number) {}

  confState(): ConfState {
    return { voters: [...this.voters].sort((a, b) => a - b), learners: [...this.learners].sort((a, b) => a - b) };
  }

  /** Replaces the configuration; progress is kept for members that stay and created for new ones. */
  setConfig(cs: ConfState, nextIndex: number): void {
    this.voters = new Set(cs.voters);
    this.learners = new Set(cs.learners.filter((id) => !this.voters.has(id)));
    for (const id of [...this.progress.keys()]) {
      if (!this.voters.has(id) && !this.learners.has(id)) this.progress.delete(id);
    }
    for (const id of [...this.voters, ...this.learners]) {
      let pr = this.progress.get(id);
      if (!pr) {
        pr = new Progress(Math.max(nextIndex, 1), this.maxInflightMsgs, false);
        // A new member gets the benefit of the doubt until the next check-quorum round.
        pr.recentActive = true;
        this.progress.set(id, pr);
      }
      pr.isLearner = this.learners.has(id);
    }
    const sorted = (s: Set<NodeId>) => [...s].sort((a, b) => a - b);
    this.memberList = [...sorted(this.voters), ...sorted(this.learners)];
  }

  isVoter(id: NodeId): boolean {
    return this.voters.has(id);
  }

  quorum(): number {
    return Math.floor(this.voters.size / 2) + 1;
  }

  /** Highest index replicated on a majority of voters (0 without voters). */
  committed(): number {
    const n = this.voters.size;
    if (n === 0) return 0;
    // Insertion sort, descending: n is a handful of voters and this runs on every ack.
    const m = this.matchScratch;
    let k = 0;
    for (const id of this.voters) {
      const v = this.progress.get(id)?.match ?? 0;
      let j = k++;
      while (j > 0 && m[j - 1]! < v) {
        m[j] = m[j - 1]!;
        j--;
      }
      m[j] = v;
    }
    return m[this.quorum() - 1]!;
  }

  resetVotes(): void {
    this.votes.clear();
  }

  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const id of this.voters) {
      const v = this.votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    const q = this.quorum();
    const result: VoteResult = granted >= q ? "won" : this.voters.size - rejected < q ? "lost" : "pending";
    return { granted, rejected, result };
  }

  /** Check-quorum: did a majority of voters (counting `self`) talk to us since the last round? */
  quorumActive(self: NodeId): boolean {
    let active = 0;
    for (const id of this.voters) {
      if (id === self || this.progress.get(id)?.recentActive) active++;
    }
    return active >= this.quorum();
  }

  /** Ids of voters then learners, each sorted, for deterministic iteration. */
  members(): readonly NodeId[] {
    return this.memberList;
  }
}
