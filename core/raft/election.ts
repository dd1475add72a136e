// Elections (Raft §5.2, §5.4.1; thesis §9.6 pre-vote, §6.2 check-quorum): starting a
// campaign, the term rules every message passes through first, and answering vote requests.

import { isTransferContext, newMessage, transferContext } from "./messages.ts";
import type { Raft } from "./raft.ts";
import { EntryType, MessageType, NONE, type Message } from "./types.ts";

/** Starts an election unless this node cannot or must not (e.g. unapplied conf changes). */
export function hup(r: Raft, transfer: boolean): void {
  if (r.state === "leader") return;
  if (!r.promotable()) {
    r.logger?.debug("raft: not campaigning: not promotable", { node: r.id });
    return;
  }
  if (hasUnappliedConfChanges(r)) {
    r.logger?.warn("raft: not campaigning: committed conf changes not yet applied", { node: r.id });
    return;
  }
  if (r.preVote && !transfer) campaign(r, "pre-election");
  else campaign(r, transfer ? "transfer" : "election");
}

function hasUnappliedConfChanges(r: Raft): boolean {
  if (r.log.applied >= r.log.committed) return false;
  const ents = r.log.slice(r.log.applied + 1, r.log.committed + 1, Infinity);
  return ents.some((e) => e.type === EntryType.ConfChange);
}

export function campaign(r: Raft, kind: "pre-election" | "election" | "transfer"): void {
  let term: number;
  let voteMsg: MessageType;
  if (kind === "pre-election") {
    r.becomePreCandidate();
    voteMsg = MessageType.PreVote;
    term = r.term + 1; // the term we would campaign in; ours does not change yet
  } else {
    r.becomeCandidate();
    voteMsg = MessageType.Vote;
    term = r.term;
  }
  const respType = voteMsg === MessageType.PreVote ? MessageType.PreVoteResp : MessageType.VoteResp;
  // Our own vote: the hard state carrying it is persisted before the requests leave.
  if (r.poll(r.id, respType, true) === "won") {
    r.wonElection();
    return;
  }
  const lastIndex = r.log.lastIndex();
  const lastTerm = r.log.lastTerm();
  for (const id of r.trk.members()) {
    if (id === r.id || !r.trk.isVoter(id)) continue;
    const m = newMessage(voteMsg, id, { term, index: lastIndex, logTerm: lastTerm });
    if (kind === "transfer") m.context = transferContext;
    r.send(m);
  }
}

/** Term rules common to all roles (§5.1). Returns false when the message must be ignored. */
export function checkTerm(r: Raft, m: Message): boolean {
  if (m.term > r.term) {
    if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
      const force = isTransferContext(m.context);
      // Leader lease: we heard from a leader within the election timeout, so a vote request
      // comes from a node that is disrupting a healthy cluster (§6 of the thesis, check-quorum).
      const inLease = r.checkQuorum && r.lead !== NONE && r.electionElapsed < r.electionTimeout;
      if (!force && inLease) return false;
    }
    if (m.type === MessageType.PreVote) {
      // Never change our term because of a pre-vote.
    } else if (m.type === MessageType.PreVoteResp && !m.reject) {
      // A granted pre-vote carries the future term; we bump when the pre-election is won.
    } else if (m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap) {
      r.becomeFollower(m.term, m.from);
    } else {
      r.becomeFollower(m.term, NONE);
    }
    return true;
  }
  if (m.term < r.term) {
    if ((r.checkQuorum || r.preVote) && (m.type === MessageType.Heartbeat || m.type === MessageType.App)) {
      // A stale leader (e.g. back from a partition) would otherwise never learn the newer
      // term: with check-quorum/pre-vote nobody bumps its term by a vote request.
      r.send(newMessage(MessageType.AppResp, m.from));
    } else if (m.type === MessageType.PreVote) {
      r.send(newMessage(MessageType.PreVoteResp, m.from, { term: r.term, reject: true }));
    }
    return false;
  }
  return true;
}

export function handleVoteRequest(r: Raft, m: Message): void {
  const isPre = m.type === MessageType.PreVote;
  const canVote =
    r.vote === m.from ||
    (r.vote === NONE && r.lead === NONE) ||
    (isPre && m.term > r.term);
  const respType = isPre ? MessageType.PreVoteResp : MessageType.VoteResp;
  if (canVote && r.log.isUpToDate(m.index, m.logTerm)) {
    // Reply with the request's term: for a pre-vote ours is lower and would be ignored.
    r.send(newMessage(respType, m.from, { term: m.term }));
    if (!isPre) {
      r.electionElapsed = 0;
      r.vote = m.from;
    }
  } else {
    r.send(newMessage(respType, m.from, { term: r.term, reject: true }));
  }
}
