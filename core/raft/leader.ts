// The leader's side of the protocol: accepting proposals, replicating the log to followers
// (pipelined Apps bounded by each follower's Inflights, probing with fast back-off, snapshots
// for followers that need compacted entries), committing by counting only entries of the
// current term (§5.4.2), check-quorum, ReadIndex and leadership transfer.

import { decodeConfChange, confChangeProblem } from "./confchange.ts";
import { payloadSize } from "./entries.ts";
import { newMessage } from "./messages.ts";
import type { Raft } from "./raft.ts";
import type { Progress } from "./progress.ts";
import { EntryType, MessageType, NONE, RaftError, type Message, type NodeId } from "./types.ts";

export function stepLeader(r: Raft, m: Message): void {
  switch (m.type) {
    case MessageType.Beat:
      bcastHeartbeat(r, r.readOnly.lastPendingCtx());
      return;
    case MessageType.CheckQuorum:
      checkQuorum(r);
      return;
    case MessageType.Prop:
      propose(r, m);
      return;
    case MessageType.ReadIndex:
      readIndex(r, m);
      return;
  }
  const pr = r.trk.progress.get(m.from);
  if (!pr) return; // not (or no longer) a member
  switch (m.type) {
    case MessageType.AppResp:
      handleAppendResponse(r, pr, m);
      return;
    case MessageType.HeartbeatResp:
      handleHeartbeatResponse(r, pr, m);
      return;
    case MessageType.SnapStatus:
      if (pr.state !== "snapshot") return;
      if (m.reject) pr.pendingSnapshot = 0; // failed: probe from where the follower really is
      pr.becomeProbe();
      // Wait for an AppResp or heartbeat answer before probing again.
      pr.msgAppFlowPaused = true;
      return;
    case MessageType.Unreachable:
      // Apps were probably lost: stop streaming optimistically.
      if (pr.state === "replicate") pr.becomeProbe();
      return;
    case MessageType.TransferLeader:
      transferLeadership(r, pr, m.from);
      return;
  }
}

function checkQuorum(r: Raft): void {
  if (!r.trk.quorumActive(r.id)) {
    r.logger?.warn("raft: leader stepping down: no quorum heard from within an election timeout", { node: r.id, term: r.term });
    r.becomeFollower(r.term, NONE);
    return;
  }
  for (const [id, pr] of r.trk.progress) if (id !== r.id) pr.recentActive = false;
}

function propose(r: Raft, m: Message): void {
  if (m.entries.length === 0) throw new RaftError("invalid", `proposing at leader ${r.id}: empty proposal`);
  if (!r.trk.progress.has(r.id)) {
    throw new RaftError("proposal_dropped", `proposing at node ${r.id}: this leader was removed from the group`);
  }
  if (r.leadTransferee !== NONE) {
    throw new RaftError("proposal_dropped", `proposing at leader ${r.id}: leadership transfer to ${r.leadTransferee} in progress`);
  }
  const local = m.from === NONE || m.from === r.id;
  let nextIndex = r.log.lastIndex();
  for (let i = 0; i < m.entries.length; i++) {
    const e = m.entries[i]!;
    nextIndex++;
    if (e.type !== EntryType.ConfChange) continue;
    const pending = r.pendingConfIndex > r.log.applied;
    const problem = pending
      ? `conf change at index ${r.pendingConfIndex} is not applied yet`
      : confChangeProblem(r.trk.confState(), decodeConfChange(e.data));
    if (problem === undefined) {
      r.pendingConfIndex = nextIndex;
    } else if (local) {
      throw new RaftError(pending ? "conf_change_pending" : "invalid", `proposing conf change at leader ${r.id}: ${problem}`);
    } else {
      // A forwarded change we must refuse still occupies its slot: it becomes a no-op entry.
      m.entries[i] = { term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) };
    }
  }
  if (!r.appendEntries(m.entries)) {
    throw new RaftError("proposal_dropped",
      `proposing at leader ${r.id}: ${r.uncommittedSize} uncommitted bytes + ${payloadSize(m.entries)} would exceed maxUncommittedEntriesBytes ${r.maxUncommittedSizeBytes}`);
  }
  bcastAppend(r);
}

function committedEntryInCurrentTerm(r: Raft): boolean {
  return r.log.termOrUndefined(r.log.committed) === r.term;
}

function readIndex(r: Raft, m: Message): void {
  // Until it commits an entry of its term, a new leader does not know the commit index (§6.4).
  // This holds for a single voter too: after a restart its persisted commit index may lag
  // entries it had committed (and acknowledged) before.
  if (!committedEntryInCurrentTerm(r)) {
    r.pendingReadIndexMessages.push(m);
    return;
  }
  confirmReadIndex(r, m);
}

function confirmReadIndex(r: Raft, m: Message): void {
  if (r.trk.voters.size === 1 && r.trk.isVoter(r.id)) {
    respondToReadIndex(r, m, r.log.committed); // no one else can have a newer leadership
    return;
  }
  r.readOnly.addRequest(r.log.committed, m);
  r.readOnly.recvAck(r.id, m.context);
  bcastHeartbeat(r, m.context);
}

function respondToReadIndex(r: Raft, req: Message, index: number): void {
  const ctx = req.context ?? new Uint8Array(0);
  if (req.from === NONE || req.from === r.id) {
    r.readStates.push({ index, requestCtx: ctx });
  } else {
    r.send(newMessage(MessageType.ReadIndexResp, req.from, { index, context: ctx }));
  }
}

/** Leader: commit what a quorum has; on progress, release reads and tell followers. */
export function maybeCommitAndReleaseReads(r: Raft): boolean {
  if (!r.log.maybeCommit(r.trk.committed(), r.term)) return false;
  if (r.pendingReadIndexMessages.length > 0 && committedEntryInCurrentTerm(r)) {
    const pending = r.pendingReadIndexMessages;
    r.pendingReadIndexMessages = [];
    for (const m of pending) confirmReadIndex(r, m);
  }
  bcastAppend(r);
  return true;
}

/** Leader: the driver persisted our log up to `index` — our own acknowledgement. */
export function leaderPersisted(r: Raft, index: number): void {
  const pr = r.trk.progress.get(r.id);
  if (pr && pr.maybeUpdate(index)) maybeCommitAndReleaseReads(r);
}

function handleAppendResponse(r: Raft, pr: Progress, m: Message): void {
  pr.recentActive = true;
  if (m.reject) {
    let next = m.rejectHint;
    if ((m.logTermHint ?? 0) > 0) next = r.log.findConflictByTerm(m.rejectHint, m.logTermHint!).index;
    if (pr.maybeDecrTo(m.index, next)) {
      if (pr.state === "replicate") pr.becomeProbe();
      maybeSendAppend(r, m.from, true);
    }
    return;
  }
  const oldPaused = pr.isPaused();
  if (!pr.maybeUpdate(m.index) && !(pr.match === m.index && pr.state === "probe")) return;
  if (pr.state === "probe") {
    pr.becomeReplicate();
  } else if (pr.state === "snapshot" && pr.match + 1 >= r.log.firstIndex()) {
    pr.becomeProbe();
    pr.becomeReplicate();
  } else if (pr.state === "replicate") {
    pr.inflights.freeLE(m.index);
  }
  if (!maybeCommitAndReleaseReads(r) && oldPaused) maybeSendAppend(r, m.from, true);
  // Fill the pipeline: send everything the window allows.
  while (maybeSendAppend(r, m.from, false)) { /* each call sends one App or returns false */ }
  if (m.from === r.leadTransferee && pr.match === r.log.lastIndex()) {
    r.send(newMessage(MessageType.TimeoutNow, m.from));
  }
  maybeStepDownRemoved(r);
}

/**
 * A leader that applied its own removal steps down only once some remaining voter has its
 * whole log, and tells that voter to campaign at once. Stepping down earlier could leave the
 * remaining voters unable to elect anyone: a voter that has not learned the removal is
 * committed still needs this node's vote, which a more up-to-date log would refuse.
 */
export function maybeStepDownRemoved(r: Raft): void {
  if (r.state !== "leader" || r.trk.isVoter(r.id)) return;
  const last = r.log.lastIndex();
  for (const id of r.trk.voters) {
    if (r.trk.progress.get(id)!.match !== last) continue;
    r.send(newMessage(MessageType.TimeoutNow, id));
    r.logger?.info("raft: removed leader stepping down", { node: r.id, term: r.term, successor: id });
    r.becomeFollower(r.term, NONE);
    return;
  }
}

function handleHeartbeatResponse(r: Raft, pr: Progress, m: Message): void {
  pr.recentActive = true;
  pr.msgAppFlowPaused = false;
  // All in-flight Apps may have been lost: let one more through so a gap is detected.
  if (pr.state === "replicate" && pr.inflights.full()) pr.inflights.freeFirstOne();
  if (pr.match < r.log.lastIndex() || pr.state === "probe") maybeSendAppend(r, m.from, true);
  if (!m.context || m.context.length === 0) return;
  const acks = r.readOnly.recvAck(m.from, m.context) > 0 ? r.readOnly.acks(m.context) : undefined;
  if (!acks) return;
  let voters = 0;
  for (const id of acks) if (r.trk.isVoter(id)) voters++;
  if (voters < r.trk.quorum()) return;
  for (const rs of r.readOnly.advance(m.context)) respondToReadIndex(r, rs.req, rs.index);
}

function transferLeadership(r: Raft, pr: Progress, transferee: NodeId): void {
  if (pr.isLearner) {
    r.logger?.info("raft: ignoring leadership transfer to a learner", { node: r.id, transferee });
    return;
  }
  if (r.leadTransferee !== NONE) {
    if (r.leadTransferee === transferee) return; // already under way
    r.leadTransferee = NONE; // abort the previous one in favour of this one
  }
  if (transferee === r.id) return;
  // The transfer must finish within one election timeout (tickHeartbeat aborts it otherwise).
  r.electionElapsed = 0;
  r.leadTransferee = transferee;
  if (pr.match === r.log.lastIndex()) r.send(newMessage(MessageType.TimeoutNow, transferee));
  else maybeSendAppend(r, transferee, true);
}

export function bcastAppend(r: Raft): void {
  for (const id of r.trk.members()) if (id !== r.id) maybeSendAppend(r, id, true);
}

export function bcastHeartbeat(r: Raft, ctx: Uint8Array | undefined): void {
  for (const id of r.trk.members()) {
    if (id === r.id) continue;
    const pr = r.trk.progress.get(id)!;
    // Never tell a follower to commit beyond what it is known to have.
    const m = newMessage(MessageType.Heartbeat, id, { commit: Math.min(pr.match, r.log.committed) });
    if (ctx) m.context = ctx;
    r.send(m);
  }
}

/** Sends the next App (or a snapshot) to `to` if its flow control allows; true if something was sent. */
export function maybeSendAppend(r: Raft, to: NodeId, sendIfEmpty: boolean): boolean {
  const pr = r.trk.progress.get(to);
  if (!pr || pr.isPaused()) return false;
  const prevIndex = pr.next - 1;
  const prevTerm = r.log.termOrUndefined(prevIndex);
  if (prevTerm === undefined) return sendSnapshot(r, to, pr);
  let ents;
  try {
    ents = r.log.entries(pr.next, r.maxMsgSizeBytes);
  } catch (err) {
    if (err instanceof RaftError && err.code === "compacted") return sendSnapshot(r, to, pr);
    throw err;
  }
  if (ents.length === 0 && !sendIfEmpty) return false;
  r.send(newMessage(MessageType.App, to, { index: prevIndex, logTerm: prevTerm, entries: ents, commit: r.log.committed }));
  pr.sentEntries(ents.length, payloadSize(ents), prevIndex + ents.length);
  return true;
}

function sendSnapshot(r: Raft, to: NodeId, pr: Progress): boolean {
  // A follower we have not heard from lately is probably down: do not ship it a snapshot.
  if (!pr.recentActive) return false;
  let snapshot;
  try {
    snapshot = r.log.snapshot();
  } catch (err) {
    if (err instanceof RaftError && err.code === "snapshot_unavailable") return false;
    throw err;
  }
  if (snapshot.metadata.index === 0) throw new Error(`raft invariant: node ${to} needs a snapshot but there is none`);
  pr.becomeSnapshot(snapshot.metadata.index);
  r.send(newMessage(MessageType.Snap, to, { snapshot }));
  return true;
}
