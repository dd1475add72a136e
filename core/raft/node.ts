// RaftNode: the public API of the Raft core (etcd's RawNode). The driver feeds it ticks,
// peer messages and proposals, then repeatedly takes a Ready (persist → send → apply, see
// types.ts) and calls advance(). Messages a node would send to itself never appear in a
// Ready: its own append counts toward the commit index once advance() confirms persistence.
//
// What the driver owes the core:
//  - one Ready at a time: advance(rd) before the next ready();
//  - applyConfChange(cc) for every committed EntryType.ConfChange entry, when it applies it;
//  - reportSnapshot(to, ok) for every Snap message it was asked to send (the leader waits in
//    "snapshot" state until then), reportUnreachable(id) when a send fails;
//  - unique contexts for concurrent readIndex() calls (a duplicate joins the pending one).

import { Raft } from "./raft.ts";
import { newMessage } from "./messages.ts";
import { leaderPersisted } from "./leader.ts";
import { confChangeProblem, decodeConfChange, encodeConfChange } from "./confchange.ts";
import {
  EntryType, MessageType, NONE, RaftError,
  type ConfChange, type ConfState, type HardState, type LogStore, type Message, type NodeId,
  type RaftConfig, type Ready, type Role, type SoftState,
} from "./types.ts";
import type { ProgressState } from "./progress.ts";

export { encodeConfChange, decodeConfChange };
export { describeEntry, describeMessage, describeReady, describeHardState, describeConfState } from "./describe.ts";

export interface PeerStatus {
  match: number;
  next: number;
  state: ProgressState;
}

export interface RaftStatus {
  id: NodeId;
  term: number;
  vote: NodeId;
  commit: number;
  applied: number;
  leader: NodeId;
  role: Role;
  lastIndex: number;
  confState: ConfState;
  /** Leader only: replication progress of every member (itself included). */
  progress?: Map<NodeId, PeerStatus>;
}

/** Index and term of the bootstrap snapshot every member of a new group starts from. */
export const bootstrapIndex = 1;
const bootstrapTerm = 1;

export class RaftNode {
  private readonly raft: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;

  constructor(config: RaftConfig) {
    this.raft = new Raft(config);
    this.prevSoft = { leader: this.raft.lead, role: this.raft.state };
    this.prevHard = this.raft.hardState();
  }

  /**
   * Initializes the storage of each founding member of a new group: a snapshot at index 1
   * (empty state machine) carrying the initial voters. Nodes that join later start from empty
   * storage and receive that (or a later) snapshot from the leader.
   */
  static bootstrap(store: LogStore, voters: NodeId[]): void {
    const { hardState } = store.initialState();
    if (store.lastIndex() !== 0 || hardState.term !== 0 || hardState.vote !== NONE) {
      throw new RaftError("invalid", `bootstrapping raft group: storage already initialized (last index ${store.lastIndex()}, term ${hardState.term})`);
    }
    if (voters.length === 0 || voters.some((id) => !Number.isInteger(id) || id <= 0)) {
      throw new RaftError("invalid", `bootstrapping raft group: voters must be positive integers, got [${voters.join(",")}]`);
    }
    const confState: ConfState = { voters: [...new Set(voters)].sort((a, b) => a - b), learners: [] };
    store.applySnapshot({ metadata: { index: bootstrapIndex, term: bootstrapTerm, confState }, data: new Uint8Array(0) });
    store.setHardState({ term: bootstrapTerm, vote: NONE, commit: bootstrapIndex }, true);
  }

  tick(): void {
    this.raft.tick();
  }

  /** A message from a peer. Proposals/reads forwarded to us that cannot be served are dropped. */
  step(m: Message): void {
    if (m.type === MessageType.Hup || m.type === MessageType.Beat || m.type === MessageType.CheckQuorum) {
      throw new RaftError("step_local_msg", `stepping node ${this.raft.id}: ${MessageType[m.type]} is local; use campaign()/tick()`);
    }
    const isResponse = m.type === MessageType.AppResp || m.type === MessageType.HeartbeatResp ||
      m.type === MessageType.VoteResp || m.type === MessageType.PreVoteResp || m.type === MessageType.Unreachable ||
      m.type === MessageType.SnapStatus;
    if (isResponse && !this.raft.trk.progress.has(m.from)) return; // from a node no longer (or not yet) a member
    try {
      this.raft.step(m);
    } catch (err) {
      const forwarded = m.type === MessageType.Prop || m.type === MessageType.ReadIndex;
      if (forwarded && err instanceof RaftError && m.from !== this.raft.id) {
        this.raft.logger?.debug("raft: dropping forwarded request", { node: this.raft.id, from: m.from, reason: err.message });
        return;
      }
      throw err;
    }
  }

  propose(data: Uint8Array): void {
    this.raft.step(newMessage(MessageType.Prop, NONE, { entries: [{ term: 0, index: 0, type: EntryType.Normal, data }] }));
  }

  /** Proposes a batch of commands in one call (one App per follower for all of them). */
  proposeBatch(datas: readonly Uint8Array[]): void {
    if (datas.length === 0) return;
    const entries = datas.map((data) => ({ term: 0, index: 0, type: EntryType.Normal, data }));
    this.raft.step(newMessage(MessageType.Prop, NONE, { entries }));
  }

  proposeConfChange(cc: ConfChange): void {
    const problem = confChangeProblem(this.raft.trk.confState(), cc);
    if (problem !== undefined) throw new RaftError("invalid", `proposing conf change at node ${this.raft.id}: ${problem}`);
    const data = encodeConfChange(cc);
    this.raft.step(newMessage(MessageType.Prop, NONE, { entries: [{ term: 0, index: 0, type: EntryType.ConfChange, data }] }));
  }

  campaign(): void {
    this.raft.step(newMessage(MessageType.Hup, NONE, { from: this.raft.id }));
  }

  transferLeadership(to: NodeId): void {
    this.raft.step(newMessage(MessageType.TransferLeader, NONE, { from: to }));
  }

  readIndex(ctx: Uint8Array): void {
    this.raft.step(newMessage(MessageType.ReadIndex, NONE, { context: ctx }));
  }

  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  reportUnreachable(id: NodeId): void {
    this.raft.step(newMessage(MessageType.Unreachable, NONE, { from: id }));
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    this.raft.step(newMessage(MessageType.SnapStatus, NONE, { from: id, reject: !ok }));
  }

  hasReady(): boolean {
    const r = this.raft;
    return (
      r.msgs.length > 0 ||
      r.log.unstable.entries.length > 0 ||
      r.log.hasNextCommittedEnts() ||
      r.log.unstable.snapshot !== undefined ||
      r.readStates.length > 0 ||
      r.lead !== this.prevSoft.leader || r.state !== this.prevSoft.role ||
      !sameHardState(r.hardState(), this.prevHard)
    );
  }

  /** The next batch of work. Call advance(rd) before asking for another Ready. */
  ready(): Ready {
    const r = this.raft;
    const rd: Ready = {
      entries: r.log.unstableEntries().slice(),
      committedEntries: r.log.nextCommittedEnts(r.maxCommittedSizePerReadyBytes),
      messages: r.msgs,
      readStates: r.readStates,
      mustSync: false,
    };
    if (r.lead !== this.prevSoft.leader || r.state !== this.prevSoft.role) {
      rd.softState = { leader: r.lead, role: r.state };
      this.prevSoft = rd.softState;
    }
    const hs = r.hardState();
    if (!sameHardState(hs, this.prevHard)) {
      rd.hardState = hs;
      // Term and vote must be durable before any message; a commit index alone may lag.
      rd.mustSync = hs.term !== this.prevHard.term || hs.vote !== this.prevHard.vote;
      this.prevHard = hs;
    }
    if (r.log.unstable.snapshot) rd.snapshot = r.log.unstable.snapshot;
    if (rd.entries.length > 0 || rd.snapshot) rd.mustSync = true;
    r.msgs = [];
    r.readStates = [];
    const lastCommitted = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastCommitted) r.log.acceptApplying(lastCommitted.index);
    return rd;
  }

  /** The driver persisted, sent and applied everything in `rd`. */
  advance(rd: Ready): void {
    const r = this.raft;
    if (rd.snapshot) {
      r.log.stableSnapTo(rd.snapshot.metadata.index);
      if (rd.snapshot.metadata.index > r.log.applied) r.log.appliedTo(rd.snapshot.metadata.index);
    }
    const lastEntry = rd.entries[rd.entries.length - 1];
    if (lastEntry) {
      r.log.stableTo(lastEntry.index, lastEntry.term);
      if (r.state === "leader") leaderPersisted(r, r.log.stableLastIndex());
    }
    const lastCommitted = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastCommitted) {
      r.log.appliedTo(lastCommitted.index);
      r.reduceUncommittedSize(rd.committedEntries);
    }
  }

  status(): RaftStatus {
    const r = this.raft;
    const st: RaftStatus = {
      id: r.id, term: r.term, vote: r.vote, commit: r.log.committed, applied: r.log.applied,
      leader: r.lead, role: r.state, lastIndex: r.log.lastIndex(), confState: r.trk.confState(),
    };
    if (r.state === "leader") {
      st.progress = new Map();
      for (const id of r.trk.members()) {
        const pr = r.trk.progress.get(id)!;
        st.progress.set(id, { match: pr.match, next: pr.next, state: pr.state });
      }
    }
    return st;
  }

  /** One line per member's progress (leader only), for tests and debugging. */
  describeProgress(): string[] {
    const r = this.raft;
    if (r.state !== "leader") return [];
    return r.trk.members().map((id) => `${id}: ${r.trk.progress.get(id)!.describe()}`);
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
