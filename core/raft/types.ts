// The vocabulary of Trivet's Raft: log entries, messages, hard state, snapshots, the Ready
// batch and the read-side storage interface the pure core consults. Shaped after etcd's raft
// library (raftpb + Ready/Advance); everything here is plain data so that it can be persisted,
// sent over a transport and replayed by the deterministic simulator.

/** A node's id inside one Raft group. Positive integer; 0 means "none". */
export type NodeId = number;
export const NONE: NodeId = 0;

export enum EntryType {
  /** Application command (opaque bytes); an empty one is the leader's no-op of a new term. */
  Normal = 0,
  /** A membership change; `data` is the encoded ConfChange (see encodeConfChange). */
  ConfChange = 1,
}

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

export enum ConfChangeType {
  AddVoter = 0,
  AddLearner = 1,
  RemoveNode = 2,
}

/** One membership change at a time (no joint consensus): add/promote/remove a single node. */
export interface ConfChange {
  type: ConfChangeType;
  nodeId: NodeId;
  /** Opaque to Raft: the application carries e.g. the node's address here. */
  context?: Uint8Array;
}

export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

/** Must be on stable storage before any message of the same Ready is sent. */
export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

export interface SnapshotMetadata {
  index: number;
  term: number;
  confState: ConfState;
}

export interface Snapshot {
  metadata: SnapshotMetadata;
  /** The state machine image at metadata.index (for Trivet: a consistent copy of state.db). */
  data: Uint8Array;
}

export enum MessageType {
  /** Local: start an election (campaign). */
  Hup = 0,
  /** Local: leader should broadcast heartbeats. */
  Beat = 1,
  /** Proposal of entries; a follower forwards it to the leader. */
  Prop = 2,
  App = 3,
  AppResp = 4,
  Vote = 5,
  VoteResp = 6,
  PreVote = 7,
  PreVoteResp = 8,
  Snap = 9,
  Heartbeat = 10,
  HeartbeatResp = 11,
  /** Local or forwarded: ask the leader to transfer leadership to `from`. */
  TransferLeader = 12,
  /** Leader tells the transferee to campaign immediately. */
  TimeoutNow = 13,
  ReadIndex = 14,
  ReadIndexResp = 15,
  /** Local: the transport reports a peer unreachable. */
  Unreachable = 16,
  /** Local: the transport reports whether sending a snapshot succeeded (`reject` = failed). */
  SnapStatus = 17,
  /** Local: check-quorum tick on the leader. */
  CheckQuorum = 18,
}

export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  /** App: term of the entry preceding `entries`; Vote: last log term of the candidate. */
  logTerm: number;
  /** App: index of the entry preceding `entries`; AppResp: highest matching index (or rejected index). */
  index: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  /** AppResp reject: the follower's hint of where to probe next (its last index, or better). */
  rejectHint: number;
  /** AppResp reject: term of the entry at rejectHint, for fast back-off. */
  logTermHint?: number;
  snapshot?: Snapshot;
  /** ReadIndex / Heartbeat: the read request id; Vote: "transfer" marks a leadership transfer campaign. */
  context?: Uint8Array;
}

export type Role = "follower" | "candidate" | "pre-candidate" | "leader";

export interface SoftState {
  leader: NodeId;
  role: Role;
}

/** A linearizable read is safe once the local applied index reaches `index`. */
export interface ReadState {
  index: number;
  requestCtx: Uint8Array;
}

/**
 * What the core asks its driver to do, in this order:
 *  1. persist `snapshot` (if any), then `entries`, then `hardState` — fsync when `mustSync`;
 *  2. only then send `messages` (a vote or an append acknowledgement must never leave before
 *     the state it promises is durable);
 *  3. apply `snapshot` (if any) and then `committedEntries` to the state machine, in order;
 *  4. call advance(ready).
 */
export interface Ready {
  softState?: SoftState;
  hardState?: HardState;
  entries: Entry[];
  snapshot?: Snapshot;
  committedEntries: Entry[];
  messages: Message[];
  readStates: ReadState[];
  mustSync: boolean;
}

/**
 * Read side of Raft storage, consulted synchronously by the pure core. The driver writes
 * through its own interface (see LogStore); the core never writes.
 */
export interface Storage {
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries [lo, hi), at least one even if it exceeds maxBytes. Throws CompactedError / UnavailableError. */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /** Term of entry i; valid for firstIndex()-1 .. lastIndex(). Throws CompactedError / UnavailableError. */
  term(i: number): number;
  firstIndex(): number;
  lastIndex(): number;
  /** The most recent snapshot; throws SnapshotTemporarilyUnavailableError if it is being made. */
  snapshot(): Snapshot;
}

/** Write side of Raft storage used by the driver and the simulator. */
export interface LogStore extends Storage {
  /** Appends, truncating any conflicting suffix first. Durable (fsynced) when it returns if sync. */
  append(entries: Entry[], sync: boolean): void;
  setHardState(hs: HardState, sync: boolean): void;
  /** Replace everything with the snapshot (log reset to start after it). */
  applySnapshot(snap: Snapshot): void;
  /** Record a snapshot taken locally at `index` and drop entries up to `index - keepEntries`. */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot;
  compact(compactIndex: number): void;
}

/** Injected randomness: uniform integer in [0, n). */
export interface Rand {
  intn(n: number): number;
}

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface RaftConfig {
  id: NodeId;
  /** Ticks without hearing from a leader before campaigning; randomized in [electionTick, 2*electionTick). */
  electionTick: number;
  heartbeatTick: number;
  storage: Storage;
  /** Last applied index at restart (entries up to it are not returned as committed again). */
  applied: number;
  /** Upper bound on bytes of entries in one App message. */
  maxSizePerMsgBytes: number;
  /** Upper bound on App messages in flight to one follower (pipelining window). */
  maxInflightMsgs: number;
  /** Upper bound on bytes of proposed-but-uncommitted entries at the leader; beyond it proposals are dropped. */
  maxUncommittedEntriesBytes: number;
  /** Upper bound on bytes of committed entries handed out in one Ready. */
  maxCommittedSizePerReadyBytes: number;
  checkQuorum: boolean;
  preVote: boolean;
  rand: Rand;
  logger?: Logger;
}

export class RaftError extends Error {
  constructor(
    readonly code: "proposal_dropped" | "not_leader" | "compacted" | "unavailable" | "snapshot_unavailable" | "step_local_msg" | "step_peer_not_found" | "conf_change_pending" | "invalid",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "RaftError";
  }
}
