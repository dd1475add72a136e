// One simulated Trivet node: the real Raft core (RaftNode) on a simulated disk, with a
// replicated key/value state machine, driven exactly as the production driver must drive it
// (types.ts, Ready): persist → send → apply snapshot and committed entries → advance. Client
// requests wait here for their entry to be applied or their ReadIndex to be served. A crash
// drops everything but the disk's durable state; a restart rebuilds from it.

import { RaftNode, decodeConfChange } from "../../core/raft/node.ts";
import { EntryType, RaftError, type ConfState, type Entry, type Message, type NodeId, type RaftConfig, type Ready, type Role } from "../../core/raft/types.ts";
import type { KvOutput } from "../linearizability/index.ts";
import type { SafetyChecker } from "./checks.ts";
import type { SimDisk } from "./disk.ts";
import { commandKey, encodeCommand, type KvCommand, type KvRead, type ReplicatedKv } from "./kv.ts";
import type { SimRand } from "./rng.ts";

export type RaftTuning = Omit<RaftConfig, "id" | "storage" | "applied" | "rand" | "logger">;

export interface NodeEnv {
  rand: SimRand;
  raft: RaftTuning;
  /** Take a local snapshot (and compact) once this many entries were applied since the last one. */
  snapshotEveryEntries: number;
  /** Bound on Ready rounds handled after one input; the core must go quiet well before it. */
  readyRoundsMax: number;
  checker: SafetyChecker;
  send(m: Message): void;
  makeKv(): ReplicatedKv;
  /** Nodes that currently believe they lead, for the leader-completeness check at commit time. */
  leaders(): { id: NodeId; term: number; store: SimDisk }[];
  /** The node crashed on its own (mid-persist fault): the cluster schedules its restart. */
  crashed(id: NodeId): void;
  stats: { snapshotsCreated: number; snapshotsInstalled: number; tornWrites: number };
  /** Self-test fault: answer reads from the local replica without ReadIndex (not linearizable). */
  staleReads: boolean;
}

export interface NodeView {
  role: Role;
  term: number;
  lead: NodeId;
}

export class SimNode {
  private raft: RaftNode | undefined;
  private kv: ReplicatedKv | undefined;
  applied = 0;
  confState: ConfState = { voters: [], learners: [] };
  private writeWaiters = new Map<string, (out: KvOutput) => void>();
  private readWaiters = new Map<string, { key: string; reply: (r: KvRead) => void }>();
  private readsReady: { index: number; ctx: string }[] = [];
  private readCounter = 0;
  private known: NodeView = { role: "follower", term: 0, lead: 0 };
  /** Fault injection: the next Ready that writes to disk crashes the node half-way through persisting it. */
  crashDuringNextPersist = false;
  /** A stalled process (GC pause, VM freeze): state kept, no ticks, arriving messages and transport reports wait in `inbox`. */
  private pausedFlag = false;
  private inbox: (() => void)[] = [];

  constructor(
    readonly id: NodeId,
    readonly disk: SimDisk,
    private readonly env: NodeEnv,
  ) {}

  get up(): boolean {
    return this.raft !== undefined;
  }

  /** Up and not stalled: able to answer a client now. */
  get responsive(): boolean {
    return this.raft !== undefined && !this.pausedFlag;
  }

  pause(): void {
    if (this.raft !== undefined) this.pausedFlag = true;
  }

  /** The stall ends: everything that arrived meanwhile is handled at once, in arrival order. */
  resume(): void {
    if (!this.pausedFlag) return;
    this.pausedFlag = false;
    const inbox = this.inbox;
    this.inbox = [];
    for (const deliver of inbox) deliver();
  }

  /** Role, term and leader as the driver learns them from Ready (softState, hardState): no status() call per event. */
  view(): NodeView | undefined {
    return this.raft === undefined ? undefined : this.known;
  }

  /** Builds the volatile state from what the disk kept. */
  start(): void {
    if (this.raft !== undefined) return;
    const kv = this.env.makeKv();
    const snap = this.disk.snapshot();
    this.confState = this.disk.initialState().confState;
    if (snap.metadata.index > 0) kv.restore(snap.metadata.index, snap.metadata.term, this.confState, snap.data);
    this.kv = kv;
    this.applied = snap.metadata.index;
    this.raft = new RaftNode({ ...this.env.raft, id: this.id, storage: this.disk, applied: this.applied, rand: this.env.rand });
    this.known = { role: "follower", term: this.disk.initialState().hardState.term, lead: 0 };
    this.drive();
  }

  crash(): void {
    this.raft = undefined;
    this.kv?.close();
    this.kv = undefined;
    this.writeWaiters.clear();
    this.readWaiters.clear();
    this.readsReady = [];
    this.crashDuringNextPersist = false;
    this.pausedFlag = false;
    this.inbox = [];
    this.disk.crash();
  }

  tick(): void {
    if (this.raft === undefined || this.pausedFlag) return;
    this.raft.tick();
    this.drive();
  }

  receive(m: Message): void {
    if (this.raft === undefined) return;
    if (this.pausedFlag) {
      this.inbox.push(() => this.receive(m));
      return;
    }
    this.ignoreRaftErrors(() => this.raft?.step(m));
    this.drive();
  }

  reportSnapshot(to: NodeId, ok: boolean): void {
    if (this.raft === undefined) return;
    if (this.pausedFlag) {
      this.inbox.push(() => this.reportSnapshot(to, ok));
      return;
    }
    this.raft.reportSnapshot(to, ok);
    this.drive();
  }

  reportUnreachable(to: NodeId): void {
    if (this.raft === undefined) return;
    if (this.pausedFlag) {
      this.inbox.push(() => this.reportUnreachable(to));
      return;
    }
    this.raft.reportUnreachable(to);
    this.drive();
  }

  /** Proposes a client write; false if the core refused it at once (it then surely did not happen here). */
  propose(cmd: KvCommand, reply: (out: KvOutput) => void): boolean {
    const raft = this.raft;
    if (raft === undefined || this.pausedFlag) return false;
    const accepted = this.ignoreRaftErrors(() => raft.propose(encodeCommand(cmd)));
    if (accepted) this.writeWaiters.set(commandKey(cmd.clientId, cmd.seq), reply);
    this.drive();
    return accepted;
  }

  /** Linearizable read through ReadIndex; answered once this node has applied the read index. */
  read(key: string, reply: (r: KvRead) => void): boolean {
    const raft = this.raft;
    if (raft === undefined || this.pausedFlag) return false;
    if (this.env.staleReads && this.kv !== undefined) {
      reply(this.kv.get(key));
      return true;
    }
    const ctx = `${this.id}/${++this.readCounter}`;
    const accepted = this.ignoreRaftErrors(() => raft.readIndex(new TextEncoder().encode(ctx)));
    if (accepted) this.readWaiters.set(ctx, { key, reply });
    this.drive();
    return accepted;
  }

  /** Runs an operator action against the core (conf change, transfer, campaign). */
  act(fn: (raft: RaftNode) => void): boolean {
    const raft = this.raft;
    if (raft === undefined || this.pausedFlag) return false;
    const ok = this.ignoreRaftErrors(() => fn(raft));
    this.drive();
    return ok;
  }

  /** One line for failure reports: role, term, indexes, membership and (leader) replication progress. */
  describe(): string {
    const raft = this.raft;
    if (raft === undefined) return `n${this.id} down (disk last ${this.disk.lastIndex()})`;
    const st = raft.status();
    const cs = `voters [${st.confState.voters.join(",")}] learners [${st.confState.learners.join(",")}]`;
    const progress = st.role === "leader" ? ` progress {${raft.describeProgress().join("; ")}}` : "";
    return `n${this.id} ${st.role} term ${st.term} lead ${st.leader} commit ${st.commit} applied ${this.applied} last ${st.lastIndex} ${cs}${progress}`;
  }

  dump(): string | undefined {
    return this.kv?.dump();
  }

  private ignoreRaftErrors(fn: () => void): boolean {
    try {
      fn();
      return true;
    } catch (err) {
      if (err instanceof RaftError) return false;
      throw err;
    }
  }

  /** The Ready loop: the ordering here is the contract every real driver must follow. */
  private drive(): void {
    for (let round = 0; this.raft !== undefined && this.raft.hasReady(); round++) {
      if (round >= this.env.readyRoundsMax) {
        throw new Error(`driving node ${this.id}: still ready after ${this.env.readyRoundsMax} rounds (the core never goes quiet)`);
      }
      const raft = this.raft;
      const rd = raft.ready();
      if (rd.hardState !== undefined) {
        // Any node's commit index at term T covers entries committed in a term ≤ T: a sound
        // (and, since leaders report first, usually exact) commit term for the checker. Noted
        // before persisting: the core decided it even if the power fails right now.
        this.env.checker.onCommit(this.id, rd.hardState.term, rd.hardState.commit, this.disk, rd.entries, this.env.leaders());
      }
      if (this.crashDuringNextPersist && writesToDisk(rd)) {
        this.persistTorn(rd);
        this.crash();
        this.env.crashed(this.id);
        return;
      }
      this.persist(rd);
      if (rd.softState !== undefined) this.known = { ...this.known, role: rd.softState.role, lead: rd.softState.leader };
      if (rd.hardState !== undefined) this.known = { ...this.known, term: rd.hardState.term };
      for (const m of rd.messages) this.env.send(m);
      if (rd.snapshot !== undefined) this.installSnapshot(rd.snapshot.metadata.index, rd.snapshot.metadata.term, rd.snapshot.metadata.confState, rd.snapshot.data);
      this.applyCommitted(rd.committedEntries);
      for (const rs of rd.readStates) this.readsReady.push({ index: rs.index, ctx: new TextDecoder().decode(rs.requestCtx) });
      raft.advance(rd);
      this.serveReads();
      this.maybeSnapshot();
    }
  }

  private persist(rd: Ready): void {
    if (rd.snapshot !== undefined) this.disk.applySnapshot(rd.snapshot);
    if (rd.entries.length > 0) this.disk.append(rd.entries, rd.mustSync);
    if (rd.hardState !== undefined) this.disk.setHardState(rd.hardState, rd.mustSync);
  }

  /** Power fails during the writes of `rd`: some prefix of them lands, the last one possibly torn. */
  private persistTorn(rd: Ready): void {
    this.env.stats.tornWrites++;
    const rand = this.env.rand;
    if (rd.snapshot !== undefined) {
      // A snapshot and the hard state that commits it land together or not at all (one
      // transaction in sqlite-storage); the core cannot restart from a snapshot past its commit.
      if (rand.chance(0.5)) return;
      this.disk.applySnapshot(rd.snapshot);
      if (rd.hardState !== undefined) this.disk.setHardState(rd.hardState, true);
    }
    const keep = rand.intn(rd.entries.length + 1);
    this.disk.appendTorn(rd.entries, keep);
    if (keep === rd.entries.length && rd.hardState !== undefined && rand.chance(0.5)) this.disk.setHardState(rd.hardState, true);
  }

  private installSnapshot(index: number, term: number, confState: ConfState, data: Uint8Array): void {
    if (index <= this.applied) return;
    this.env.checker.onApplySnapshot(this.id, index, term);
    this.kv?.restore(index, term, confState, data);
    this.applied = index;
    this.confState = confState;
    this.env.stats.snapshotsInstalled++;
  }

  private applyCommitted(entries: Entry[]): void {
    const kv = this.kv;
    const raft = this.raft;
    if (kv === undefined || raft === undefined) return;
    // One state-machine batch per run of entries ending at a conf change, which carries the
    // membership in force after it (stored with the batch, and in snapshots taken later).
    let batch: Entry[] = [];
    const flush = (confState: ConfState | undefined): void => {
      if (batch.length === 0) return;
      for (const [key, out] of kv.apply(batch, confState)) this.answerWrite(key, out);
      batch = [];
    };
    for (const e of entries) {
      if (e.index <= this.applied) continue;
      this.env.checker.onApply(this.id, e);
      batch.push(e);
      this.applied = e.index;
      if (e.type === EntryType.ConfChange) {
        this.confState = raft.applyConfChange(decodeConfChange(e.data));
        flush(this.confState);
      }
    }
    flush(undefined);
  }

  private answerWrite(key: string, out: KvOutput): void {
    const reply = this.writeWaiters.get(key);
    if (reply === undefined) return;
    this.writeWaiters.delete(key);
    reply(out);
  }

  private serveReads(): void {
    const kv = this.kv;
    if (kv === undefined) return;
    const waiting: { index: number; ctx: string }[] = [];
    for (const rs of this.readsReady) {
      if (rs.index > this.applied) {
        waiting.push(rs);
        continue;
      }
      const w = this.readWaiters.get(rs.ctx);
      if (w === undefined) continue;
      this.readWaiters.delete(rs.ctx);
      w.reply(kv.get(w.key));
    }
    this.readsReady = waiting;
  }

  private maybeSnapshot(): void {
    const kv = this.kv;
    if (kv === undefined) return;
    const snapIndex = this.disk.snapshot().metadata.index;
    if (this.applied - snapIndex < this.env.snapshotEveryEntries) return;
    this.disk.createSnapshot(this.applied, this.confState, kv.snapshot());
    this.env.stats.snapshotsCreated++;
  }
}

function writesToDisk(rd: Ready): boolean {
  return rd.snapshot !== undefined || rd.entries.length > 0 || rd.hardState !== undefined;
}
