// The simulated operator: membership changes and leadership transfers while the cluster works.
// One spare node starts outside the group; the operator cycles it in — add as learner, promote
// to voter — and then removes another voter, which becomes the next spare (and is later added
// back with its old disk). Single-step changes only, and the group never has fewer voters than
// it started with, so a 3-node run keeps ≥ 3 voters throughout.

import { ConfChangeType, type NodeId } from "../../core/raft/types.ts";
import type { SimRand } from "./rng.ts";
import type { Scheduler } from "./scheduler.ts";
import type { SimNode } from "./sim-node.ts";

export interface OperatorOptions {
  actEveryMsMin: number;
  actEveryMsMax: number;
  /** Chance that an action is a leadership transfer rather than the next membership step. */
  transferChance: number;
  /** Chance that the voter removed is the current leader itself. */
  removeLeaderChance: number;
  /** Chance that a membership change is proposed through a random node (forwarded to the leader). */
  viaFollowerChance: number;
}

export interface OperatorStats {
  confChangesProposed: number;
  membershipCycles: number;
  transfers: number;
}

type Phase = "add-learner" | "promote" | "remove";

export class Operator {
  private phase: Phase = "add-learner";
  private victim: NodeId | undefined;
  stopped = false;
  readonly stats: OperatorStats = { confChangesProposed: 0, membershipCycles: 0, transfers: 0 };

  constructor(
    private readonly scheduler: Scheduler,
    private readonly rand: SimRand,
    private readonly nodes: readonly SimNode[],
    private spare: NodeId,
    private readonly options: OperatorOptions,
  ) {}

  start(): void {
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.scheduler.after(this.rand.range(this.options.actEveryMsMin, this.options.actEveryMsMax), "operator", () => {
      this.act();
      this.schedule();
    });
  }

  private leader(): SimNode | undefined {
    let best: SimNode | undefined;
    let bestTerm = -1;
    for (const n of this.nodes) {
      const v = n.view();
      if (v?.role === "leader" && v.term > bestTerm) [best, bestTerm] = [n, v.term];
    }
    return best;
  }

  private act(): void {
    const leader = this.leader();
    if (leader === undefined) return;
    if (this.rand.chance(this.options.transferChance)) {
      const others = leader.confState.voters.filter((id) => id !== leader.id);
      if (others.length === 0) return;
      const to = this.rand.pick(others);
      if (leader.act((raft) => raft.transferLeadership(to))) this.stats.transfers++;
      return;
    }
    this.membershipStep(leader);
  }

  private membershipStep(leader: SimNode): void {
    const cs = leader.confState;
    switch (this.phase) {
      case "add-learner":
        if (cs.learners.includes(this.spare) || cs.voters.includes(this.spare)) {
          this.phase = "promote";
          return this.membershipStep(leader);
        }
        return this.propose(leader, ConfChangeType.AddLearner, this.spare);
      case "promote":
        if (cs.voters.includes(this.spare)) {
          this.phase = "remove";
          const candidates = cs.voters.filter((id) => id !== this.spare && id !== leader.id);
          this.victim = this.rand.chance(this.options.removeLeaderChance) || candidates.length === 0 ? leader.id : this.rand.pick(candidates);
          return this.membershipStep(leader);
        }
        return this.propose(leader, ConfChangeType.AddVoter, this.spare);
      case "remove": {
        const victim = this.victim!;
        if (!cs.voters.includes(victim) && !cs.learners.includes(victim)) {
          this.spare = victim;
          this.victim = undefined;
          this.phase = "add-learner";
          this.stats.membershipCycles++;
          return;
        }
        return this.propose(leader, ConfChangeType.RemoveNode, victim);
      }
    }
  }

  private propose(leader: SimNode, type: ConfChangeType, nodeId: NodeId): void {
    const via = this.rand.chance(this.options.viaFollowerChance) ? this.rand.pick(this.nodes) : leader;
    if (via.act((raft) => raft.proposeConfChange({ type, nodeId }))) this.stats.confChangesProposed++;
  }
}
