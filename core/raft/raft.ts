// The Raft protocol state machine (Raft paper + thesis, shaped after etcd's raft): terms,
// roles and their transitions, ticks, and the dispatch of every message (elections live in
// election.ts, the leader's side in leader.ts, followers and candidates in follower.ts). It does
// no I/O: inputs are step(message) and tick(); outputs accumulate in `msgs`, `readStates` and
// the unstable log, which RaftNode turns into a Ready. Each role installs its own step function
// (stepLeader / stepCandidate / stepFollower, in leader.ts and follower.ts).

import { RaftLog } from "./log.ts";
import { ProgressTracker } from "./tracker.ts";
import { ReadOnly } from "./readonly.ts";
import { stepLeader, bcastAppend, maybeSendAppend, maybeCommitAndReleaseReads, maybeStepDownRemoved } from "./leader.ts";
import { stepCandidate, stepFollower } from "./follower.ts";
import { campaign, checkTerm, handleVoteRequest, hup } from "./election.ts";
import { newMessage } from "./messages.ts";
import { applyToConfState } from "./confchange.ts";
import { payloadSize } from "./entries.ts";
import {
  EntryType, MessageType, NONE, RaftError,
  type ConfChange, type ConfState, type Entry, type HardState, type Logger, type Message, type NodeId,
  type RaftConfig, type Rand, type ReadState, type Role,
} from "./types.ts";

export type StepFn = (r: Raft, m: Message) => void;

export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  state: Role = "follower";
  readonly log: RaftLog;
  readonly trk: ProgressTracker;
  msgs: Message[] = [];
  readStates: ReadState[] = [];
  readonly readOnly = new ReadOnly();
  /** ReadIndex requests received before this leader committed an entry of its term. */
  pendingReadIndexMessages: Message[] = [];

  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;
  readonly electionTimeout: number;
  readonly heartbeatTimeout: number;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly maxMsgSizeBytes: number;
  readonly maxUncommittedSizeBytes: number;
  readonly maxCommittedSizePerReadyBytes: number;

  /** Node that leadership is being transferred to (leader only). */
  leadTransferee: NodeId = NONE;
  /** Leader: index of the latest conf change proposed; a new one waits until it is applied. */
  pendingConfIndex = 0;
  /** Leader: payload bytes of entries appended in this term and not yet applied. */
  uncommittedSize = 0;

  private readonly rand: Rand;
  readonly logger: Logger | undefined;
  stepFn: StepFn = stepFollower;
  private tickFn: () => void = () => this.tickElection();

  constructor(c: RaftConfig) {
    validateConfig(c);
    this.id = c.id;
    this.electionTimeout = c.electionTick;
    this.heartbeatTimeout = c.heartbeatTick;
    this.checkQuorum = c.checkQuorum;
    this.preVote = c.preVote;
    this.maxMsgSizeBytes = c.maxSizePerMsgBytes;
    this.maxUncommittedSizeBytes = c.maxUncommittedEntriesBytes;
    this.maxCommittedSizePerReadyBytes = c.maxCommittedSizePerReadyBytes;
    this.rand = c.rand;
    this.logger = c.logger;
    this.log = new RaftLog(c.storage);
    this.trk = new ProgressTracker(c.maxInflightMsgs);
    const { hardState, confState } = c.storage.initialState();
    this.trk.setConfig(confState, this.log.lastIndex() + 1);
    if (hardState.term !== 0 || hardState.vote !== NONE || hardState.commit !== 0) this.loadState(hardState);
    if (c.applied > this.log.applied) this.log.appliedTo(Math.min(c.applied, this.log.committed));
    this.becomeFollower(this.term, NONE);
  }

  private loadState(hs: HardState): void {
    if (hs.commit > this.log.lastIndex()) {
      throw new RaftError("invalid", `restoring raft node ${this.id}: hard state commit ${hs.commit} beyond last index ${this.log.lastIndex()}`);
    }
    // A commit index below the snapshot (a crash between persisting the snapshot and the hard
    // state) is stale: everything in the snapshot is committed.
    this.log.committed = Math.max(hs.commit, this.log.committed);
    this.term = hs.term;
    this.vote = hs.vote;
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  /** Can this node become leader? Voters only, and not while a snapshot is waiting to be persisted. */
  promotable(): boolean {
    return this.trk.isVoter(this.id) && !this.log.hasPendingSnapshot();
  }

  send(m: Message): void {
    // A forwarded TransferLeader keeps `from` = the transferee; everything else is from us.
    if (m.from === NONE) m.from = this.id;
    const t = m.type;
    if (t === MessageType.Vote || t === MessageType.VoteResp || t === MessageType.PreVote || t === MessageType.PreVoteResp) {
      if (m.term === 0) throw new Error(`raft invariant: ${MessageType[t]} sent without a term`);
    } else if (t !== MessageType.Prop && t !== MessageType.ReadIndex) {
      // Forwarded proposals and reads are not bound to a term; everything else carries ours.
      m.term = this.term;
    }
    if (m.to === this.id) throw new Error(`raft invariant: node ${this.id} sending ${MessageType[t]} to itself`);
    this.msgs.push(m);
  }

  // ---- role transitions ----

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.electionTimeout + this.rand.intn(this.electionTimeout);
    this.leadTransferee = NONE;
    this.trk.resetVotes();
    const next = this.log.lastIndex() + 1;
    for (const [id, pr] of this.trk.progress) {
      pr.match = 0;
      pr.next = next;
      pr.becomeProbe();
      pr.next = next;
      pr.recentActive = false;
      if (id === this.id) pr.match = this.log.stableLastIndex();
    }
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    // Reads waiting on a leadership that is over are dropped; their callers retry.
    this.readOnly.reset();
    this.pendingReadIndexMessages = [];
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.stepFn = stepFollower;
    this.reset(term);
    this.tickFn = () => this.tickElection();
    this.lead = lead;
    this.state = "follower";
  }

  becomePreCandidate(): void {
    if (this.state === "leader") throw new Error("raft invariant: leader cannot become pre-candidate");
    // Pre-vote changes neither term nor vote: a partitioned node cannot disrupt the cluster.
    this.stepFn = stepCandidate;
    this.trk.resetVotes();
    this.tickFn = () => this.tickElection();
    this.lead = NONE;
    this.state = "pre-candidate";
  }

  becomeCandidate(): void {
    if (this.state === "leader") throw new Error("raft invariant: leader cannot become candidate");
    this.stepFn = stepCandidate;
    this.reset(this.term + 1);
    this.tickFn = () => this.tickElection();
    this.vote = this.id;
    this.state = "candidate";
  }

  becomeLeader(): void {
    if (this.state === "follower") throw new Error("raft invariant: follower cannot become leader directly");
    this.stepFn = stepLeader;
    this.reset(this.term);
    this.tickFn = () => this.tickHeartbeat();
    this.lead = this.id;
    this.state = "leader";
    const self = this.trk.progress.get(this.id);
    if (self) {
      self.becomeReplicate();
      self.recentActive = true;
    }
    // Conf changes from earlier terms may be unapplied: no new one until they are.
    this.pendingConfIndex = this.log.lastIndex();
    // The no-op entry of the new term: committing it commits everything before it (§5.4.2).
    this.appendEntries([{ term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) }]);
  }

  /** Leader: stamp and append entries; false if the uncommitted-bytes bound refuses them. */
  appendEntries(ents: Entry[]): boolean {
    const size = payloadSize(ents);
    if (this.uncommittedSize > 0 && size > 0 && this.uncommittedSize + size > this.maxUncommittedSizeBytes) return false;
    this.uncommittedSize += size;
    // Fresh objects: the proposal's entries may be shared (e.g. a duplicated forwarded Prop).
    let li = this.log.lastIndex();
    const stamped = ents.map((e) => ({ term: this.term, index: ++li, type: e.type, data: e.data }));
    this.log.append(stamped);
    // The leader's own match advances only when advance() confirms the entries are persisted.
    return true;
  }

  reduceUncommittedSize(ents: readonly Entry[]): void {
    if (this.state !== "leader") return;
    this.uncommittedSize = Math.max(0, this.uncommittedSize - payloadSize(ents));
  }

  // ---- time ----

  tick(): void {
    this.tickFn();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.step(newMessage(MessageType.Hup, this.id, { from: this.id }));
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.step(newMessage(MessageType.CheckQuorum, this.id, { from: this.id }));
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.state === "leader" && this.leadTransferee !== NONE) this.leadTransferee = NONE;
    }
    if (this.state !== "leader") return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.step(newMessage(MessageType.Beat, this.id, { from: this.id }));
    }
  }

  pastElectionTimeout(): boolean {
    return this.electionElapsed >= this.randomizedElectionTimeout;
  }

  // ---- elections ----

  /** Starts an election unless this node cannot or must not (see election.ts). */
  hup(transfer: boolean): void {
    hup(this, transfer);
  }

  poll(id: NodeId, t: MessageType, granted: boolean): "won" | "lost" | "pending" {
    this.logger?.debug("raft: vote received", { node: this.id, from: id, type: MessageType[t], granted, term: this.term });
    this.trk.recordVote(id, granted);
    return this.trk.tallyVotes().result;
  }

  wonElection(): void {
    if (this.state === "pre-candidate") {
      campaign(this, "election");
    } else {
      this.becomeLeader();
      bcastAppend(this);
    }
  }

  // ---- the single entry point for messages ----

  step(m: Message): void {
    if (m.term !== 0 && !checkTerm(this, m)) return;
    switch (m.type) {
      case MessageType.Hup:
        hup(this, false);
        return;
      case MessageType.Vote:
      case MessageType.PreVote:
        handleVoteRequest(this, m);
        return;
      default:
        this.stepFn(this, m);
    }
  }

  // ---- membership ----

  /** Applies a committed conf change (called by the driver when it applies the entry). */
  applyConfChange(cc: ConfChange): ConfState {
    const cs = applyToConfState(this.trk.confState(), cc);
    // A new member starts probing at our last entry, so there is something to send it at once.
    this.trk.setConfig(cs, this.log.lastIndex());
    if (this.state !== "leader") return cs;
    if (!this.trk.progress.has(this.id) || !this.trk.isVoter(this.id)) {
      // This leader was removed. It accepts no more proposals and hands over as soon as a
      // remaining voter has its whole log (see maybeStepDownRemoved).
      bcastAppend(this);
      maybeStepDownRemoved(this);
      return cs;
    }
    if (this.leadTransferee !== NONE && !this.trk.isVoter(this.leadTransferee)) this.leadTransferee = NONE;
    // A smaller quorum may commit more now.
    if (!maybeCommitAndReleaseReads(this)) {
      for (const id of this.trk.members()) if (id !== this.id) maybeSendAppend(this, id, false);
    }
    return cs;
  }

  /** Resets the tracker to a snapshot's configuration (follower restoring a snapshot). */
  restoreConfig(cs: ConfState): void {
    this.trk.setConfig(cs, this.log.lastIndex() + 1);
  }
}

function validateConfig(c: RaftConfig): void {
  const problems: string[] = [];
  if (!(c.id > 0)) problems.push(`id must be > 0 (got ${c.id})`);
  if (!(c.heartbeatTick > 0)) problems.push(`heartbeatTick must be > 0 (got ${c.heartbeatTick})`);
  if (!(c.electionTick > c.heartbeatTick)) problems.push(`electionTick (${c.electionTick}) must be > heartbeatTick (${c.heartbeatTick})`);
  if (!(c.maxInflightMsgs >= 1)) problems.push(`maxInflightMsgs must be >= 1 (got ${c.maxInflightMsgs})`);
  if (!(c.maxSizePerMsgBytes > 0)) problems.push(`maxSizePerMsgBytes must be > 0`);
  if (!(c.maxUncommittedEntriesBytes > 0)) problems.push(`maxUncommittedEntriesBytes must be > 0`);
  if (!(c.maxCommittedSizePerReadyBytes > 0)) problems.push(`maxCommittedSizePerReadyBytes must be > 0`);
  if (problems.length > 0) throw new RaftError("invalid", `configuring raft node ${c.id}: ${problems.join("; ")}`);
}
