// The driver that runs the pure Raft core on a real node: a tick timer, the Ready loop in the
// order the contract demands (persist → send → apply → advance), durable storage through a
// LogStore that persists one Ready in one fsync (group commit: every proposal that arrived
// while the previous Ready was being written shares the next fsync), the transport, proposal
// tracking with forwarding and re-proposal after a leader change, batched ReadIndex reads,
// snapshots with log compaction, membership changes, and bounded queues (back-pressure).
//
// Exactly-once: each proposal carries a request key (client id + sequence) that the state
// machine de-duplicates, so re-proposing after a leader change or a client retry is harmless.
import { randomInt } from "node:crypto";
import { decodeConfChange, encodeConfChange, RaftNode } from "../node.ts";
import { EntryType, RaftError } from "../types.ts";
import type { ConfChange, ConfState, Entry, HardState, LogStore, Logger, NodeId, Ready, Role, Snapshot } from "../types.ts";
import type { Transport } from "./transport.ts";

/** What the driver needs from the replicated state machine. */
export interface HostStateMachine {
  appliedIndex(): number;
  /** The membership in force at appliedIndex() (recorded with the applied entries). */
  confState(): ConfState;
  /** Applies committed entries in one transaction; returns one outcome per entry that carried a request. */
  apply(entries: Entry[], confState?: ConfState): AppliedRequest[];
  snapshot(): { index: number; term: number; data: Uint8Array };
  restore(snapshot: Snapshot): void;
}

export interface AppliedRequest {
  requestKey: string;
  result: unknown;
  /** A command that was valid to propose but failed deterministically in apply (e.g. a CAS mismatch is a result, not this). */
  error?: string;
}

/** A LogStore that can persist one whole Ready atomically (SqliteLogStore, MemoryStorage adapters). */
export interface ReadyStore extends LogStore {
  persistReady(ready: { entries: Entry[]; hardState?: HardState; snapshot?: Snapshot }, sync: boolean): void;
  /** Records the membership in force after entry `index`, durably. */
  setConfState(index: number, cs: ConfState): void;
}

export interface RaftHostOptions {
  id: NodeId;
  store: ReadyStore;
  stateMachine: HostStateMachine;
  transport: Transport;
  /** Addresses of the initial members (including this node) when bootstrapping a new group. */
  initialMembers?: Map<NodeId, string>;
  /** Addresses of peers known at start; later ones arrive through ConfChange contexts. */
  peerAddresses?: Map<NodeId, string>;
  tickMs?: number;
  electionTicks?: number;
  heartbeatTicks?: number;
  proposalTimeoutMs?: number;
  readTimeoutMs?: number;
  pendingProposalsMax?: number;
  /** Take a snapshot (and compact the log) after this many applied entries. */
  snapshotEveryEntries?: number;
  readyIterationsPerTurnMax?: number;
  logger?: Logger;
}

/** Counters of the Ready loop since start (times in ms), for status and benchmarks. */
export interface HostStats {
  readies: number;
  persists: number;
  persistedEntries: number;
  persistMs: number;
  persistMsMax: number;
  applies: number;
  appliedEntries: number;
  applyMs: number;
  applyMsMax: number;
}

export class HostError extends Error {
  constructor(
    readonly code: "busy" | "timeout" | "stopped" | "no_leader" | "rejected",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "HostError";
  }
}

interface PendingProposal {
  data: Uint8Array;
  /** Set for membership changes, which go through proposeConfChange. */
  conf?: ConfChange;
  key: string;
  deadlineMs: number;
  resolve(result: unknown): void;
  reject(err: Error): void;
}

interface PendingRead {
  deadlineMs: number;
  resolve(index: number): void;
  reject(err: Error): void;
}

const defaults = {
  tickMs: 50,
  electionTicks: 10,
  heartbeatTicks: 1,
  proposalTimeoutMs: 10_000,
  readTimeoutMs: 5_000,
  pendingProposalsMax: 100_000,
  snapshotEveryEntries: 20_000,
  readyIterationsPerTurnMax: 64,
};

export class RaftHost {
  readonly id: NodeId;
  private readonly node: RaftNode;
  private readonly opts: typeof defaults;
  private readonly store: ReadyStore;
  private readonly sm: HostStateMachine;
  private readonly transport: Transport;
  private readonly log?: Logger;
  private readonly pending = new Map<string, PendingProposal>();
  /** Proposals waiting for a known leader before they can be handed to Raft. */
  private unproposed: PendingProposal[] = [];
  /** Proposals of the current event-loop turn, proposed together by proposeQueued(). */
  private batch: PendingProposal[] = [];
  private readsQueued: PendingRead[] = [];
  private readonly readsInFlight = new Map<string, PendingRead[]>();
  private readonly readsWaitingApply: Array<{ index: number; reads: PendingRead[] }> = [];
  private readSeq = 0;
  /**
   * Distinguishes this process's read contexts from those of the node's earlier lives: the
   * leader de-duplicates pending reads by context, and one from before a restart carries an
   * older index.
   */
  private readonly readEpoch = randomInt(2 ** 47).toString(36);
  private leader = 0;
  private term = 0;
  private role: Role = "follower";
  /** Term and vote as last written to stable storage. */
  private durableTerm: number;
  private durableVote: NodeId;
  /** Latest commit-only hard state not yet written (see persist). */
  private lazyHardState?: HardState;
  private readonly stats: HostStats = { readies: 0, persists: 0, persistedEntries: 0, persistMs: 0, persistMsMax: 0, applies: 0, appliedEntries: 0, applyMs: 0, applyMsMax: 0 };
  /** A leader's Ready is waiting one turn to be written (see handleReady). */
  private persistDeferred = false;
  private confState: ConfState;
  private lastSnapshotIndex: number;
  private readonly peerAddresses = new Map<NodeId, string>();
  private ticker?: NodeJS.Timeout;
  private scheduled = false;
  private stopped = false;
  private readonly leaderWaiters: Array<() => void> = [];

  constructor(options: RaftHostOptions) {
    this.id = options.id;
    this.opts = { ...defaults, ...stripUndefined(options) } as typeof defaults;
    this.store = options.store;
    this.sm = options.stateMachine;
    this.transport = options.transport;
    this.log = options.logger;
    if (options.initialMembers && this.store.lastIndex() === 0 && this.store.initialState().confState.voters.length === 0) {
      RaftNode.bootstrap(this.store, [...options.initialMembers.keys()]);
    }
    for (const [id, addr] of options.initialMembers ?? []) this.peerAddresses.set(id, addr);
    for (const [id, addr] of options.peerAddresses ?? []) this.peerAddresses.set(id, addr);
    const stored = this.store.snapshot();
    this.lastSnapshotIndex = stored.metadata.index;
    // The log starts after the stored snapshot: a state machine behind it (new group, or a
    // crash between persisting a received snapshot and restoring it) must restore it first.
    if (stored.metadata.index > this.sm.appliedIndex()) this.sm.restore(stored);
    // Raft restarts with the membership of the applied state: entries up to the applied index
    // are not delivered again, so a ConfChange among them would otherwise be forgotten.
    const applied = this.sm.appliedIndex();
    const smConf = this.sm.confState();
    if (applied > stored.metadata.index && smConf.voters.length > 0) this.store.setConfState(applied, smConf);
    this.confState = this.store.initialState().confState;
    const hs = this.store.initialState().hardState;
    this.durableTerm = hs.term;
    this.durableVote = hs.vote;
    this.term = hs.term;
    this.node = new RaftNode({
      id: options.id,
      electionTick: this.opts.electionTicks,
      heartbeatTick: this.opts.heartbeatTicks,
      storage: this.store,
      applied: this.sm.appliedIndex(),
      maxSizePerMsgBytes: 1024 * 1024,
      maxInflightMsgs: 256,
      maxUncommittedEntriesBytes: 256 * 1024 * 1024,
      maxCommittedSizePerReadyBytes: 16 * 1024 * 1024,
      checkQuorum: true,
      preVote: true,
      rand: { intn: (n) => randomInt(n) },
      logger: options.logger,
    });
  }

  async start(): Promise<void> {
    await this.transport.start({
      deliver: (messages) => {
        for (const m of messages) this.safeStep(m);
        this.schedule();
      },
      unreachable: (id) => this.node.reportUnreachable(id),
      snapshotStatus: (id, ok) => {
        this.node.reportSnapshot(id, ok);
        this.schedule();
      },
    });
    this.syncPeers();
    this.ticker = setInterval(() => this.onTick(), this.opts.tickMs);
    this.schedule();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.ticker) clearInterval(this.ticker);
    const err = new HostError("stopped", `node ${this.id} is stopping`);
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.unproposed = [];
    this.failReads(err);
    await this.transport.stop();
  }

  /** Current leader as this node knows it (0 = none), and term. */
  leaderInfo(): { leader: NodeId; term: number } {
    return { leader: this.leader, term: this.term };
  }

  status(): ReturnType<RaftNode["status"]> & { appliedIndex: number; pendingProposals: number; stats: HostStats } {
    return { ...this.node.status(), appliedIndex: this.sm.appliedIndex(), pendingProposals: this.pending.size, stats: { ...this.stats } };
  }

  /** Resolves once a leader is known (bounded by timeoutMs). */
  async waitForLeader(timeoutMs: number): Promise<NodeId> {
    const end = Date.now() + timeoutMs;
    while (this.leader === 0) {
      if (this.stopped) throw new HostError("stopped", `node ${this.id} stopped while waiting for a leader`);
      const left = end - Date.now();
      if (left <= 0) throw new HostError("no_leader", `node ${this.id}: no leader elected within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 50));
        this.leaderWaiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
    return this.leader;
  }

  /**
   * Proposes a command; resolves with its result once this node has applied it. `key` must be
   * unique per logical request (client id + sequence): retries reuse it.
   */
  propose(data: Uint8Array, key: string): Promise<unknown> {
    if (this.stopped) return Promise.reject(new HostError("stopped", `node ${this.id} is stopped`));
    const existing = this.pending.get(key);
    if (existing) return new Promise((resolve, reject) => this.chain(existing, resolve, reject));
    if (this.pending.size >= this.opts.pendingProposalsMax) {
      return Promise.reject(new HostError("busy", `node ${this.id}: ${this.pending.size} proposals pending (limit ${this.opts.pendingProposalsMax}); retry later`));
    }
    return new Promise((resolve, reject) => {
      const p: PendingProposal = { data, key, deadlineMs: Date.now() + this.opts.proposalTimeoutMs, resolve, reject };
      this.pending.set(key, p);
      this.submit(p);
      this.schedule();
    });
  }

  /** Resolves with a read index once this node has applied it: a local read after that is linearizable. */
  linearizableRead(): Promise<number> {
    if (this.stopped) return Promise.reject(new HostError("stopped", `node ${this.id} is stopped`));
    return new Promise((resolve, reject) => {
      this.readsQueued.push({ deadlineMs: Date.now() + this.opts.readTimeoutMs, resolve, reject });
      this.schedule();
    });
  }

  /**
   * Proposes a membership change (one at a time: while another is in the log but not applied,
   * this one waits for it, up to proposalTimeoutMs); resolves with the new configuration once
   * applied here. A joining node's address travels in `cc.context`.
   */
  changeMembership(cc: ConfChange): Promise<ConfState> {
    const key = confChangeKey(cc);
    if (this.pending.has(key)) return Promise.reject(new HostError("busy", `node ${this.id}: the same membership change is already in progress`));
    return new Promise((resolve, reject) => {
      const p: PendingProposal = { data: encodeConfChange(cc), conf: cc, key, deadlineMs: Date.now() + this.opts.proposalTimeoutMs, resolve: (v) => resolve(v as ConfState), reject };
      this.pending.set(key, p);
      this.submit(p);
      this.schedule();
    });
  }

  /** Records where a member listens (from the replicated state after a restart). */
  setPeerAddress(id: NodeId, address: string): void {
    if (this.peerAddresses.get(id) === address) return;
    this.peerAddresses.set(id, address);
    this.syncPeers();
  }

  transferLeadership(to: NodeId): void {
    this.node.transferLeadership(to);
    this.schedule();
  }

  private chain(p: PendingProposal, resolve: (v: unknown) => void, reject: (e: Error) => void): void {
    const prevResolve = p.resolve;
    const prevReject = p.reject;
    p.resolve = (v) => { prevResolve(v); resolve(v); };
    p.reject = (e) => { prevReject(e); reject(e); };
  }

  /** Queues a proposal for the next batch; membership changes go to Raft one by one. */
  private submit(p: PendingProposal): void {
    if (this.leader === 0) {
      this.unproposed.push(p);
      return;
    }
    if (!p.conf) {
      this.batch.push(p);
      return;
    }
    try {
      this.node.proposeConfChange(p.conf);
    } catch (err) {
      this.onProposeError([p], err);
    }
  }

  /** Hands all proposals queued in this event-loop turn to Raft as one batch (one append). */
  private proposeQueued(): void {
    if (this.batch.length === 0) return;
    const batch = this.batch;
    this.batch = [];
    try {
      this.node.proposeBatch(batch.map((p) => p.data));
    } catch (err) {
      this.onProposeError(batch, err);
    }
  }

  private onProposeError(ps: PendingProposal[], err: unknown): void {
    if (err instanceof RaftError && (err.code === "proposal_dropped" || err.code === "not_leader")) {
      this.unproposed.push(...ps);
      return;
    }
    // The change in the log that is not applied yet may be this very one, proposed again after
    // a leader change (applying it resolves the caller), or another one: either way, try again
    // once it is applied (retryUnproposed) instead of failing a change that may take effect.
    if (err instanceof RaftError && err.code === "conf_change_pending" && ps.every((p) => p.conf)) {
      this.unproposed.push(...ps);
      return;
    }
    for (const p of ps) {
      this.pending.delete(p.key);
      p.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private safeStep(m: Parameters<RaftNode["step"]>[0]): void {
    try {
      this.node.step(m);
    } catch (err) {
      this.log?.debug("raft step refused a message", { node: this.id, from: m.from, type: m.type, error: String(err) });
    }
  }

  private onTick(): void {
    this.node.tick();
    const now = Date.now();
    for (const p of this.pending.values()) {
      if (p.deadlineMs < now) {
        this.pending.delete(p.key);
        p.reject(new HostError("timeout", `node ${this.id}: proposal ${p.key} not applied within ${this.opts.proposalTimeoutMs} ms (outcome unknown; retry with the same key)`));
      }
    }
    this.unproposed = this.unproposed.filter((p) => this.pending.has(p.key));
    this.retryUnproposed();
    this.expireReads(now);
    this.schedule();
  }

  /**
   * Proposals Raft dropped while a leader was known (a leadership transfer in progress, the
   * uncommitted-bytes bound) go back to Raft on each tick: a transfer that is abandoned, or a
   * log that drains, changes no leader, so waiting for a leader change would hold them until
   * their deadline.
   */
  private retryUnproposed(): void {
    if (this.leader === 0 || this.unproposed.length === 0) return;
    const retry = this.unproposed;
    this.unproposed = [];
    for (const p of retry) this.submit(p);
  }

  private schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.process();
    });
  }

  private process(): void {
    if (this.stopped || this.persistDeferred) return;
    this.proposeQueued();
    this.flushReads();
    for (let i = 0; i < this.opts.readyIterationsPerTurnMax && this.node.hasReady(); i++) {
      if (this.handleReady(this.node.ready()) === "deferred") return;
    }
    if (this.node.hasReady()) this.schedule();
  }

  /**
   * One Ready, in the contract's order. The leader may send its appends before writing the same
   * entries itself (Raft §10.2.1; etcd does the same): its own acknowledgement counts only once
   * advance() confirms they are durable. The write then waits one turn so that HTTP/2 hands the
   * frames to the socket before the fsync blocks the thread. Never when the Ready changes term
   * or vote — those must be durable before any message leaves.
   */
  private handleReady(rd: Ready): "done" | "deferred" {
    this.stats.readies++;
    if (rd.softState) {
      this.onSoftState(rd.softState.leader);
      this.role = rd.softState.role;
    }
    const termOrVoteChanged = rd.hardState !== undefined && this.termOrVoteChanged(rd.hardState);
    if (this.role === "leader" && rd.entries.length > 0 && !rd.snapshot && !termOrVoteChanged) {
      if (rd.messages.length > 0) this.transport.send(rd.messages);
      this.persistDeferred = true;
      setImmediate(() => {
        this.persistDeferred = false;
        if (this.stopped) return;
        this.persist(rd);
        this.finishReady(rd);
        this.schedule();
      });
      return "deferred";
    }
    this.persist(rd);
    if (rd.messages.length > 0) this.transport.send(rd.messages);
    this.finishReady(rd);
    return "done";
  }

  /**
   * Step 1 of the contract. A hard state that only moves the commit index is not written on its
   * own: Raft needs commit durable for nothing (a restarted node learns it again from the
   * leader, and the state machine skips entries it has applied), so it rides along with the
   * next write of entries, term or vote instead of costing a transaction per commit.
   */
  private persist(rd: Ready): void {
    const hs = rd.hardState ?? this.lazyHardState;
    const commitOnly = rd.entries.length === 0 && !rd.snapshot && (!rd.hardState || !this.termOrVoteChanged(rd.hardState));
    if (commitOnly) {
      if (rd.hardState) this.lazyHardState = rd.hardState;
      return;
    }
    const t0 = performance.now();
    this.store.persistReady({ entries: rd.entries, hardState: hs, snapshot: rd.snapshot }, rd.mustSync);
    this.stats.persists++;
    this.stats.persistedEntries += rd.entries.length;
    const persistMs = performance.now() - t0;
    this.stats.persistMs += persistMs;
    if (persistMs > this.stats.persistMsMax) this.stats.persistMsMax = persistMs;
    this.lazyHardState = undefined;
    if (hs) {
      this.term = hs.term;
      this.durableTerm = hs.term;
      this.durableVote = hs.vote;
    }
  }

  private termOrVoteChanged(hs: HardState): boolean {
    return hs.term !== this.durableTerm || hs.vote !== this.durableVote;
  }

  /** Apply and advance: steps 3 and 4 of the Ready contract. */
  private finishReady(rd: Ready): void {
    if (rd.snapshot && rd.snapshot.metadata.index > this.sm.appliedIndex()) {
      this.sm.restore(rd.snapshot);
      this.confState = rd.snapshot.metadata.confState;
      this.lastSnapshotIndex = rd.snapshot.metadata.index;
      this.syncPeers();
    }
    if (rd.committedEntries.length > 0) this.applyCommitted(rd.committedEntries);
    for (const rs of rd.readStates) this.onReadState(rs.index, rs.requestCtx);
    this.node.advance(rd);
    this.completeReads();
    this.maybeSnapshot();
  }

  private onSoftState(leader: NodeId): void {
    if (leader === this.leader) return;
    const previous = this.leader;
    this.leader = leader;
    this.log?.info("raft leader changed", { node: this.id, leader, previous });
    if (leader === 0) return;
    for (const w of this.leaderWaiters.splice(0)) w();
    // Proposals in flight may have been lost with the old leader; propose them again (the
    // state machine de-duplicates by request key, so one that did commit is not applied twice).
    const waiting = new Set(this.unproposed);
    const retry = [...this.unproposed, ...[...this.pending.values()].filter((p) => !waiting.has(p))];
    this.unproposed = [];
    this.batch = [];
    for (const p of retry) if (this.pending.has(p.key)) this.submit(p);
    // Reads in flight with the old leader will never be answered.
    for (const [ctx, reads] of this.readsInFlight) {
      this.readsInFlight.delete(ctx);
      this.readsQueued.push(...reads);
    }
  }

  private applyCommitted(entries: Entry[]): void {
    let run: Entry[] = [];
    const flush = () => {
      if (run.length === 0) return;
      const t0 = performance.now();
      this.resolveApplied(this.sm.apply(run));
      this.stats.applies++;
      this.stats.appliedEntries += run.length;
      const applyMs = performance.now() - t0;
      this.stats.applyMs += applyMs;
      if (applyMs > this.stats.applyMsMax) this.stats.applyMsMax = applyMs;
      run = [];
    };
    for (const e of entries) {
      if (e.type !== EntryType.ConfChange) {
        run.push(e);
        continue;
      }
      flush();
      const cc = decodeConfChange(e.data);
      this.confState = this.node.applyConfChange(cc);
      if (cc.context && cc.context.length > 0) this.peerAddresses.set(cc.nodeId, new TextDecoder().decode(cc.context));
      this.syncPeers();
      this.resolveApplied(this.sm.apply([e], this.confState));
      this.resolveConfChange(cc);
    }
    flush();
  }

  private resolveApplied(results: AppliedRequest[]): void {
    for (const r of results) {
      const p = this.pending.get(r.requestKey);
      if (!p) continue;
      this.pending.delete(r.requestKey);
      if (r.error) p.reject(new HostError("rejected", r.error));
      else p.resolve(r.result);
    }
  }

  private resolveConfChange(cc: ConfChange): void {
    const key = confChangeKey(cc);
    const p = this.pending.get(key);
    if (!p) return;
    this.pending.delete(key);
    p.resolve(this.confState);
  }

  /**
   * Every known address goes to the transport, members or not: a node that has just joined has
   * no configuration yet (it arrives with the first snapshot) but must answer the leader.
   */
  private syncPeers(): void {
    for (const [id, addr] of this.peerAddresses) if (id !== this.id) this.transport.setPeer(id, addr);
  }

  private flushReads(): void {
    if (this.readsQueued.length === 0 || this.leader === 0) return;
    const ctx = `r${this.id}.${this.readEpoch}-${++this.readSeq}`;
    const reads = this.readsQueued;
    this.readsQueued = [];
    try {
      this.node.readIndex(new TextEncoder().encode(ctx));
    } catch (err) {
      // `leader` follows Raft's soft state one Ready late: a tick may already have started an
      // election. The reads wait for the next leader (or their deadline), as with leader 0.
      if (!(err instanceof RaftError && err.code === "not_leader")) throw err;
      this.readsQueued = reads;
      return;
    }
    this.readsInFlight.set(ctx, reads);
  }

  private onReadState(index: number, requestCtx: Uint8Array): void {
    const ctx = new TextDecoder().decode(requestCtx);
    const reads = this.readsInFlight.get(ctx);
    if (!reads) return;
    this.readsInFlight.delete(ctx);
    this.readsWaitingApply.push({ index, reads });
  }

  private completeReads(): void {
    const applied = this.sm.appliedIndex();
    for (let i = this.readsWaitingApply.length - 1; i >= 0; i--) {
      const w = this.readsWaitingApply[i]!;
      if (w.index > applied) continue;
      this.readsWaitingApply.splice(i, 1);
      for (const r of w.reads) r.resolve(w.index);
    }
  }

  private expireReads(now: number): void {
    const expired = (r: PendingRead) => {
      if (r.deadlineMs >= now) return false;
      r.reject(new HostError("timeout", `node ${this.id}: linearizable read not confirmed within ${this.opts.readTimeoutMs} ms`));
      return true;
    };
    this.readsQueued = this.readsQueued.filter((r) => !expired(r));
    // A read whose index is known still waits for this node to apply it, which a partition
    // from the leader can hold up indefinitely.
    for (let i = this.readsWaitingApply.length - 1; i >= 0; i--) {
      const w = this.readsWaitingApply[i]!;
      w.reads = w.reads.filter((r) => !expired(r));
      if (w.reads.length === 0) this.readsWaitingApply.splice(i, 1);
    }
    for (const [ctx, reads] of this.readsInFlight) {
      const left = reads.filter((r) => !expired(r));
      if (left.length === 0) this.readsInFlight.delete(ctx);
      else if (left.length !== reads.length) this.readsInFlight.set(ctx, left);
    }
    // Re-issue a read batch that has waited for a whole election timeout (request or answer lost).
    for (const [ctx, reads] of this.readsInFlight) {
      if (reads.every((r) => r.deadlineMs - now < this.opts.readTimeoutMs - this.opts.tickMs * this.opts.electionTicks)) {
        this.readsInFlight.delete(ctx);
        this.readsQueued.push(...reads);
      }
    }
  }

  private failReads(err: Error): void {
    for (const r of this.readsQueued) r.reject(err);
    for (const reads of this.readsInFlight.values()) for (const r of reads) r.reject(err);
    for (const w of this.readsWaitingApply) for (const r of w.reads) r.reject(err);
    this.readsQueued = [];
    this.readsInFlight.clear();
    this.readsWaitingApply.length = 0;
  }

  private maybeSnapshot(): void {
    const applied = this.sm.appliedIndex();
    if (applied - this.lastSnapshotIndex < this.opts.snapshotEveryEntries) return;
    const snap = this.sm.snapshot();
    this.store.createSnapshot(snap.index, this.confState, snap.data);
    this.lastSnapshotIndex = snap.index;
    this.log?.info("raft snapshot taken", { node: this.id, index: snap.index, bytes: snap.data.length });
  }
}

function confChangeKey(cc: ConfChange): string {
  return `conf:${cc.type}:${cc.nodeId}`;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
