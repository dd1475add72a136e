// One node's replica of the replicated state: the Raft driver (RaftHost) over durable Raft
// storage (raft.db), the state machine (state.db) and the Raft transport, assembled. Mutations
// are validated, wrapped in an envelope with a request key and proposed; reads are local
// (reporting their applied index) or linearizable (ReadIndex, then local).
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { RaftHost, type AppliedRequest, type HostStateMachine, type RaftHostOptions } from "../raft/driver/raft-host.ts";
import type { Transport } from "../raft/driver/transport.ts";
import { SqliteLogStore } from "../raft/sqlite-storage.ts";
import type { ConfChange, ConfState, Entry, Logger, NodeId, Snapshot } from "../raft/types.ts";
import type { CommandResult } from "./apply.ts";
import { encodeEnvelope, type Command } from "./commands.ts";
import { StateMachine, type KvRead } from "./state-machine.ts";

/** Server-assigned request ids are spread over this many client ids ("lanes") so that no lane
 * ever has more requests in flight than the state machine keeps de-duplication rows for. */
const SERVER_LANES = 16;

export interface RequestId {
  clientId: string;
  seq: number;
}

export interface ReplicaOptions {
  id: NodeId;
  dataDir: string;
  transport: Transport;
  /** Members of a brand-new group (this node included), with their Raft addresses. */
  initialMembers?: Map<NodeId, string>;
  peerAddresses?: Map<NodeId, string>;
  host?: Partial<Pick<RaftHostOptions, "tickMs" | "electionTicks" | "heartbeatTicks" | "proposalTimeoutMs" | "readTimeoutMs" | "pendingProposalsMax" | "snapshotEveryEntries">>;
  /** Entries kept behind a snapshot for lagging followers (see SqliteLogStore). */
  snapshotCatchUpEntries?: number;
  logger?: Logger;
  /** Proposer clock (ms since the epoch), stamped into commands; apply never reads a clock. */
  nowMs?: () => number;
}

export type ReadMode = "local" | "linearizable";

class StateMachineAdapter implements HostStateMachine {
  constructor(readonly sm: StateMachine) {}

  /** StateMachine caches it between applies, so the driver's frequent asks cost no SQL. */
  appliedIndex(): number {
    return this.sm.appliedIndex;
  }

  confState(): ConfState {
    return this.sm.confState();
  }

  apply(entries: Entry[], confState?: ConfState): AppliedRequest[] {
    const out: AppliedRequest[] = [];
    for (const r of this.sm.apply(entries, { confState })) {
      if (r.kind === "command") out.push({ requestKey: requestKey(r.clientId, r.seq), result: r.result });
    }
    return out;
  }

  snapshot(): { index: number; term: number; data: Uint8Array } {
    return this.sm.snapshot();
  }

  restore(snapshot: Snapshot): void {
    const { index, term, confState } = snapshot.metadata;
    this.sm.restore(snapshot.data.length === 0 ? StateMachine.emptySnapshot(index, term, confState) : { index, term, data: snapshot.data });
  }
}

export function requestKey(clientId: string, seq: number): string {
  return `${clientId}#${seq}`;
}

export class Replica {
  readonly host: RaftHost;
  readonly stateMachine: StateMachine;
  readonly store: SqliteLogStore;
  private readonly laneSeq = new Array<number>(SERVER_LANES).fill(0);
  private readonly clientPrefix: string;
  private nextLane = 0;
  private readonly nowMs: () => number;

  private constructor(opts: ReplicaOptions) {
    fs.mkdirSync(opts.dataDir, { recursive: true });
    this.store = SqliteLogStore.open(opts.dataDir, { snapshotCatchUpEntries: opts.snapshotCatchUpEntries });
    this.stateMachine = StateMachine.open(path.join(opts.dataDir, "state.db"));
    this.clientPrefix = `n${opts.id}-${randomBytes(6).toString("hex")}`;
    this.nowMs = opts.nowMs ?? Date.now;
    this.host = new RaftHost({
      id: opts.id,
      store: this.store,
      stateMachine: new StateMachineAdapter(this.stateMachine),
      transport: opts.transport,
      initialMembers: opts.initialMembers,
      peerAddresses: opts.peerAddresses,
      logger: opts.logger,
      ...opts.host,
    });
  }

  static async open(opts: ReplicaOptions): Promise<Replica> {
    const r = new Replica(opts);
    await r.host.start();
    return r;
  }

  /**
   * Validates and proposes a command; resolves with its result once applied on this node.
   * A client that retries passes the same request id, and the command is applied at most once.
   */
  async execute(command: Command, request?: RequestId): Promise<CommandResult> {
    const req = request ?? this.serverRequestId();
    const data = encodeEnvelope({ clientId: req.clientId, seq: req.seq, atMs: Math.floor(this.nowMs()), command });
    return (await this.host.propose(data, requestKey(req.clientId, req.seq))) as CommandResult;
  }

  async get(key: Uint8Array, mode: ReadMode = "local"): Promise<KvRead> {
    if (mode === "linearizable") await this.host.linearizableRead();
    return this.stateMachine.get(key);
  }

  changeMembership(cc: ConfChange): Promise<ConfState> {
    return this.host.changeMembership(cc);
  }

  status() {
    return this.host.status();
  }

  async close(): Promise<void> {
    await this.host.stop();
    this.store.close();
    this.stateMachine.close();
  }

  private serverRequestId(): RequestId {
    const lane = this.nextLane;
    this.nextLane = (lane + 1) % SERVER_LANES;
    this.laneSeq[lane]! += 1;
    return { clientId: `${this.clientPrefix}-${lane}`, seq: this.laneSeq[lane]! };
  }
}
