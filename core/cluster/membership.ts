// Leader-side membership reconciler. Nodes join as learners (they receive the log but do not
// vote); once a learner has caught up, the leader promotes it to voter, one change at a time,
// until the group has its target number of voters (1, 3 or 5: an odd count, at most 5, so a
// cluster grows past five hosts without slowing commits). Level-triggered: it looks at the
// configuration and the replication progress every interval and acts on what it sees. It also
// keeps the nodes table's role column (what the state says of each member) equal to Raft's
// configuration, so a promotion, or a change the leader lost before recording it, shows there.
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

/** A member's role as the replicated nodes table records it. */
export interface RecordedRole {
  nodeId: NodeId;
  role: string;
}

/** The role changes that make the recorded roles match Raft's configuration (members it names only). */
export function roleUpdates(s: Pick<ProgressView, "role" | "confState">, recorded: readonly RecordedRole[]): { nodeId: NodeId; role: "voter" | "learner" }[] {
  if (s.role !== "leader") return [];
  const out: { nodeId: NodeId; role: "voter" | "learner" }[] = [];
  for (const r of recorded) {
    const actual = s.confState.voters.includes(r.nodeId) ? "voter" : s.confState.learners.includes(r.nodeId) ? "learner" : undefined;
    if (actual !== undefined && actual !== r.role) out.push({ nodeId: r.nodeId, role: actual });
  }
  return out;
}

/** The nodes table as the reconciler needs it: what it records, and a way to change a role through Raft. */
export interface RoleRecord {
  read(): RecordedRole[];
  set(nodeId: NodeId, role: "voter" | "learner"): Promise<void>;
}

export interface MembershipOptions {
  intervalMs?: number;
  /** A learner this close to the leader's last index counts as caught up. */
  lagEntriesMax?: number;
  logger?: Logger;
  /** When given, recorded roles are kept equal to the configuration. */
  roles?: RoleRecord;
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
    this.busy = true;
    try {
      await this.promote();
      await this.recordRoles();
    } finally {
      this.busy = false;
    }
  }

  private async promote(): Promise<void> {
    const id = learnerToPromote(this.host.status(), this.lagEntriesMax);
    if (id === undefined) return;
    try {
      const cs = await this.host.changeMembership({ type: ConfChangeType.AddVoter, nodeId: id });
      this.opts.logger?.info("promoted learner to voter", { node: id, voters: cs.voters, learners: cs.learners });
    } catch (err) {
      this.opts.logger?.warn("promoting learner failed; will retry", { node: id, error: String(err) });
    }
  }

  private async recordRoles(): Promise<void> {
    const roles = this.opts.roles;
    if (!roles) return;
    for (const u of roleUpdates(this.host.status(), roles.read())) {
      try {
        await roles.set(u.nodeId, u.role);
      } catch (err) {
        // Level-triggered: the next interval tries again.
        this.opts.logger?.debug("recording a node's role failed", { node: u.nodeId, role: u.role, error: String(err) });
        return;
      }
    }
  }
}
