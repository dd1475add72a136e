// The follower's and candidate's side of the protocol: accepting the leader's appends,
// heartbeats and snapshots (with the fast back-off hint on a mismatch), counting votes,
// and forwarding proposals, reads and transfer requests to the known leader.

import { newMessage } from "./messages.ts";
import type { Raft } from "./raft.ts";
import { MessageType, NONE, RaftError, type Message, type Snapshot } from "./types.ts";

export function stepFollower(r: Raft, m: Message): void {
  switch (m.type) {
    case MessageType.Prop:
      if (r.lead === NONE) throw new RaftError("proposal_dropped", `proposing at node ${r.id} (term ${r.term}): no leader known`);
      m.to = r.lead;
      r.send(m);
      return;
    case MessageType.App:
      r.electionElapsed = 0;
      r.lead = m.from;
      handleAppend(r, m);
      return;
    case MessageType.Heartbeat:
      r.electionElapsed = 0;
      r.lead = m.from;
      handleHeartbeat(r, m);
      return;
    case MessageType.Snap:
      r.electionElapsed = 0;
      r.lead = m.from;
      handleSnapshot(r, m);
      return;
    case MessageType.TransferLeader:
      if (r.lead === NONE) {
        r.logger?.info("raft: dropping leadership transfer request: no leader known", { node: r.id, term: r.term });
        return;
      }
      m.to = r.lead;
      r.send(m);
      return;
    case MessageType.TimeoutNow:
      // The leader asked us to take over: campaign at once, without pre-vote (we know the
      // leader is alive, so this is no disruption) and past leader leases.
      r.hup(true);
      return;
    case MessageType.ReadIndex:
      if (r.lead === NONE) throw new RaftError("not_leader", `read index at node ${r.id} (term ${r.term}): no leader known`);
      m.to = r.lead;
      r.send(m);
      return;
    case MessageType.ReadIndexResp:
      r.readStates.push({ index: m.index, requestCtx: m.context ?? new Uint8Array(0) });
      return;
  }
}

export function stepCandidate(r: Raft, m: Message): void {
  const myVoteResp = r.state === "pre-candidate" ? MessageType.PreVoteResp : MessageType.VoteResp;
  switch (m.type) {
    case MessageType.Prop:
      throw new RaftError("proposal_dropped", `proposing at node ${r.id} (term ${r.term}): election in progress, no leader`);
    case MessageType.ReadIndex:
      throw new RaftError("not_leader", `read index at node ${r.id} (term ${r.term}): election in progress, no leader`);
    case MessageType.App:
      r.becomeFollower(m.term, m.from); // a leader of our term exists: we lost
      handleAppend(r, m);
      return;
    case MessageType.Heartbeat:
      r.becomeFollower(m.term, m.from);
      handleHeartbeat(r, m);
      return;
    case MessageType.Snap:
      r.becomeFollower(m.term, m.from);
      handleSnapshot(r, m);
      return;
    case myVoteResp: {
      const result = r.poll(m.from, m.type, !m.reject);
      if (result === "won") r.wonElection();
      else if (result === "lost") r.becomeFollower(r.term, NONE);
      return;
    }
  }
}

function handleAppend(r: Raft, m: Message): void {
  if (m.index < r.log.committed) {
    // Everything up to our commit index is known to match: tell the leader where we are.
    r.send(newMessage(MessageType.AppResp, m.from, { index: r.log.committed }));
    return;
  }
  const lastNew = r.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
  if (lastNew !== undefined) {
    r.send(newMessage(MessageType.AppResp, m.from, { index: lastNew }));
    return;
  }
  // Mismatch: hint the largest index whose term is <= the leader's term at m.index, so the
  // leader can skip a whole term of entries per round trip instead of one entry.
  const hint = r.log.findConflictByTerm(Math.min(m.index, r.log.lastIndex()), m.logTerm);
  r.send(newMessage(MessageType.AppResp, m.from, { index: m.index, reject: true, rejectHint: hint.index, logTermHint: hint.term }));
}

function handleHeartbeat(r: Raft, m: Message): void {
  r.log.commitTo(m.commit);
  const resp = newMessage(MessageType.HeartbeatResp, m.from);
  if (m.context) resp.context = m.context;
  r.send(resp);
}

function handleSnapshot(r: Raft, m: Message): void {
  if (!m.snapshot) return;
  if (restore(r, m.snapshot)) {
    r.send(newMessage(MessageType.AppResp, m.from, { index: r.log.lastIndex() }));
  } else {
    r.send(newMessage(MessageType.AppResp, m.from, { index: r.log.committed }));
  }
}

/** Installs a leader's snapshot unless we already have what it covers. */
function restore(r: Raft, s: Snapshot): boolean {
  const { index, term, confState } = s.metadata;
  if (index <= r.log.committed) return false;
  if (!confState.voters.includes(r.id) && !confState.learners.includes(r.id)) {
    // We are joining: the snapshot predates the conf change that adds us, which follows in
    // the log. Until it is applied we are not promotable, so this cannot make us campaign.
    r.logger?.info("raft: restoring snapshot that predates this node's membership", { node: r.id, index });
  }
  if (r.log.matchTerm(index, term)) {
    // We have the entry: just fast-forward the commit index.
    r.log.commitTo(index);
    return false;
  }
  r.log.restore(s);
  r.restoreConfig(confState);
  return true;
}
