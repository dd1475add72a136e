// The Raft protocol state machine (Raft paper + thesis, shaped after etcd's raft): terms and
// roles, elections with pre-vote and check-quorum, and the dispatch of every message. It does
// no I/O: inputs are step(message) and tick(); outputs accumulate in `msgs`, `readStates` and
// the unstable log, which RaftNode turns into a Ready. Each role installs its own step function
// (stepLeader / stepCandidate / stepFollower, in leader.ts and follower.ts).

import { RaftLog } from "./log.ts";
import { ProgressTracker } from "./tracker.ts";
import { ReadOnly } from "./readonly.ts";
import { stepLeader, bcastAppend, maybeSendAppend, maybeCommitAndReleaseReads } from "./leader.ts";
import { stepCandidate, stepFollower } from "./follower.ts";
import { applyToConfState } from "./confchange.ts";
import { payloadSize } from "./entries.ts";
import {
  EntryType, MessageType, NONE, RaftError,
  type ConfChange, type ConfState, type Entry, type HardState, type Logger, type Message, type NodeId,
  type RaftConfig, type Rand, type ReadState, type Role,
} from "./types.ts";

export type StepFn = (r: Raft, m: Message) => void;

/** Marks a Vote/TimeoutNow-triggered campaign as a leadership transfer (bypasses leader leases). */
export const transferContext = new Uint8Array([0x74, 0x72, 0x61, 0x6e, 0x73, 0x66, 0x65, 0x72]); // "transfer"

export function isTransferContext(ctx: Uint8Array | undefined): boolean {
  if (!ctx || ctx.length !== transferContext.length) return false;
  for (let i = 0; i < ctx.length; i++) if (ctx[i] !== transferContext[i]) return false;
  return true;
}

const emptyEntries: Entry[] = [];

/** A message with every field present (one object shape for the whole hot path). */
export function newMessage(type: MessageType, to: NodeId, fields?: Partial<Message>): Message {
  const m: Message = { type, from: NONE, to, term: 0, logTerm: 0, index: 0, entries: emptyEntries, commit: 0, reject: false, rejectHint: 0 };
  return fields ? Object.assign(m, fields) : m;
}

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
    if (hs.commit < this.log.committed || hs.commit > this.log.lastIndex()) {
      throw new RaftError("invalid", `restoring raft node ${this.id}: hard state commit ${hs.commit} outside [${this.log.committed}, ${this.log.lastIndex()}]`);
    }
    this.log.committed = hs.commit;
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
    this.readOnly.reset();
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
    let li = this.log.lastIndex();
    for (const e of ents) {
      e.term = this.term;
      e.index = ++li;
    }
    this.log.append(ents);
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

  /** Starts an election unless this node cannot or must not (e.g. unapplied conf changes). */
  hup(transfer: boolean): void {
    if (this.state === "leader") return;
    if (!this.promotable()) {
      this.logger?.debug("raft: not campaigning: not promotable", { node: this.id });
      return;
    }
    if (this.hasUnappliedConfChanges()) {
      this.logger?.warn("raft: not campaigning: committed conf changes not yet applied", { node: this.id });
      return;
    }
    if (this.preVote && !transfer) this.campaign("pre-election");
    else this.campaign(transfer ? "transfer" : "election");
  }

  private hasUnappliedConfChanges(): boolean {
    if (this.log.applied >= this.log.committed) return false;
    const ents = this.log.slice(this.log.applied + 1, this.log.committed + 1, Infinity);
    return ents.some((e) => e.type === EntryType.ConfChange);
  }

  campaign(kind: "pre-election" | "election" | "transfer"): void {
    let term: number;
    let voteMsg: MessageType;
    if (kind === "pre-election") {
      this.becomePreCandidate();
      voteMsg = MessageType.PreVote;
      term = this.term + 1; // the term we would campaign in; ours does not change yet
    } else {
      this.becomeCandidate();
      voteMsg = MessageType.Vote;
      term = this.term;
    }
    const respType = voteMsg === MessageType.PreVote ? MessageType.PreVoteResp : MessageType.VoteResp;
    // Our own vote: the hard state carrying it is persisted before the requests leave.
    if (this.poll(this.id, respType, true) === "won") {
      this.wonElection();
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const id of this.trk.members()) {
      if (id === this.id || !this.trk.isVoter(id)) continue;
      const m = newMessage(voteMsg, id, { term, index: lastIndex, logTerm: lastTerm });
      if (kind === "transfer") m.context = transferContext;
      this.send(m);
    }
  }

  poll(id: NodeId, t: MessageType, granted: boolean): "won" | "lost" | "pending" {
    this.logger?.debug("raft: vote received", { node: this.id, from: id, type: MessageType[t], granted, term: this.term });
    this.trk.recordVote(id, granted);
    return this.trk.tallyVotes().result;
  }

  wonElection(): void {
    if (this.state === "pre-candidate") {
      this.campaign("election");
    } else {
      this.becomeLeader();
      bcastAppend(this);
    }
  }

  // ---- the single entry point for messages ----

  step(m: Message): void {
    if (m.term !== 0 && !this.checkTerm(m)) return;
    switch (m.type) {
      case MessageType.Hup:
        this.hup(false);
        return;
      case MessageType.Vote:
      case MessageType.PreVote:
        this.handleVoteRequest(m);
        return;
      default:
        this.stepFn(this, m);
    }
  }

  /** Term rules common to all roles (§5.1). Returns false when the message must be ignored. */
  private checkTerm(m: Message): boolean {
    if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        const force = isTransferContext(m.context);
        // Leader lease: we heard from a leader within the election timeout, so a vote request
        // comes from a node that is disrupting a healthy cluster (§6 of the thesis, check-quorum).
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout;
        if (!force && inLease) return false;
      }
      if (m.type === MessageType.PreVote) {
        // Never change our term because of a pre-vote.
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // A granted pre-vote carries the future term; we bump when the pre-election is won.
      } else if (m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
      return true;
    }
    if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === MessageType.Heartbeat || m.type === MessageType.App)) {
        // A stale leader (e.g. back from a partition) would otherwise never learn the newer
        // term: with check-quorum/pre-vote nobody bumps its term by a vote request.
        this.send(newMessage(MessageType.AppResp, m.from));
      } else if (m.type === MessageType.PreVote) {
        this.send(newMessage(MessageType.PreVoteResp, m.from, { term: this.term, reject: true }));
      }
      return false;
    }
    return true;
  }

  private handleVoteRequest(m: Message): void {
    const isPre = m.type === MessageType.PreVote;
    const canVote =
      this.vote === m.from ||
      (this.vote === NONE && this.lead === NONE) ||
      (isPre && m.term > this.term);
    const respType = isPre ? MessageType.PreVoteResp : MessageType.VoteResp;
    if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
      // Reply with the request's term: for a pre-vote ours is lower and would be ignored.
      this.send(newMessage(respType, m.from, { term: m.term }));
      if (!isPre) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send(newMessage(respType, m.from, { term: this.term, reject: true }));
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
      // This leader was removed: tell followers the commit index, then step down so the
      // remaining voters elect a leader among themselves.
      bcastAppend(this);
      this.becomeFollower(this.term, NONE);
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
