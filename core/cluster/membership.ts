// Leader-side membership reconciler. Nodes join as learners (they receive the log but do not
// vote); once a learner has caught up, the leader promotes it to voter, one change at a time,
// until the group has its target number of voters (1, 3 or 5: an odd count, at most 5, so a
// cluster grows past five hosts without slowing commits). Level-triggered: it looks at the
// configuration and the replication progress every interval and acts on what it sees.
import type { RaftHost } from "../raft/driver/raft-host.ts";
import { ConfChangeType, type Logger, type NodeId } from "../raft/types.ts";

export const votersMax = 5;

/** The number of voters a group of `members` nodes should have. */
export function targetVoters(members: number): number {
  if (members >= votersMax) return votersMax;
  if (members >= 3) return 3;
  return 1;
}

export interface ProgressView {
  role: string;
  lastIndex: number;
  confState: { voters: NodeId[]; learners: NodeId[] };
  progress?: Map<NodeId, { match: number; state?: string }>;
}

/** The learner to promote now, if any: the most caught-up one within `lagEntriesMax` of the leader. */
export function learnerToPromote(s: ProgressView, lagEntriesMax: number): NodeId | undefined {
  if (s.role !== "leader" || !s.progress) return undefined;
  const { voters, learners } = s.confState;
  if (voters.length >= targetVoters(voters.length + learners.length)) return undefined;
  let best: { id: NodeId; match: number } | undefined;
  for (const id of learners) {
    const pr = s.progress.get(id);
    // Only a learner that is answering appends (replicate state) and has acknowledged entries:
    // promoting one that cannot reach the leader would cost the group its quorum.
    if (!pr || pr.match === 0 || (pr.state !== undefined && pr.state !== "replicate")) continue;
    const match = pr.match;
    if (s.lastIndex - match > lagEntriesMax) continue;
    if (!best || match > best.match || (match === best.match && id < best.id)) best = { id, match };
  }
  return best?.id;
}

export interface MembershipOptions {
  intervalMs?: number;
  /** A learner this close to the leader's last index counts as caught up. */
  lagEntriesMax?: number;
  logger?: Logger;
}

export class MembershipReconciler {
  private timer?: NodeJS.Timeout;
  private busy = false;
  private readonly intervalMs: number;
  private readonly lagEntriesMax: number;

  constructor(private readonly host: RaftHost, private readonly opts: MembershipOptions = {}) {
    this.intervalMs = opts.intervalMs ?? 500;
    this.lagEntriesMax = opts.lagEntriesMax ?? 1000;
  }

  start(): void {
    this.timer = setInterval(() => void this.reconcile(), this.intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async reconcile(): Promise<void> {
    if (this.busy) return;
    const id = learnerToPromote(this.host.status(), this.lagEntriesMax);
    if (id === undefined) return;
    this.busy = true;
    try {
      const cs = await this.host.changeMembership({ type: ConfChangeType.AddVoter, nodeId: id });
      this.opts.logger?.info("promoted learner to voter", { node: id, voters: cs.voters, learners: cs.learners });
    } catch (err) {
      this.opts.logger?.warn("promoting learner failed; will retry", { node: id, error: String(err) });
    } finally {
      this.busy = false;
    }
  }
}
