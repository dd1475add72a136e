// The simulated cluster: N voters plus one spare node, each a SimNode on its own SimDisk,
// joined by a SimNetwork and driven by one virtual clock. It owns node ticks, crashes and
// restarts, and the per-step safety checks (election safety is sampled after every event;
// log matching, leader completeness and state-machine safety are checked inside the writes
// and applies themselves, see checks.ts).

import { RaftNode } from "../../core/raft/node.ts";
import type { Message, NodeId } from "../../core/raft/types.ts";
import { SafetyChecker } from "./checks.ts";
import { SimDisk, type DiskOptions } from "./disk.ts";
import type { ReplicatedKv } from "./kv.ts";
import { SimNetwork, type NetworkOptions } from "./network.ts";
import type { SimRand } from "./rng.ts";
import type { Scheduler } from "./scheduler.ts";
import { SimNode, type NodeEnv, type RaftTuning } from "./sim-node.ts";

export interface ClusterOptions {
  voters: number;
  tickMs: number;
  raft: RaftTuning;
  disk: DiskOptions;
  network: NetworkOptions;
  snapshotEveryEntries: number;
  readyRoundsMax: number;
  makeKv(): ReplicatedKv;
  staleReads: boolean;
}

export interface ClusterStats {
  crashes: number;
  restarts: number;
  elections: number;
  snapshotsCreated: number;
  snapshotsInstalled: number;
  tornWrites: number;
}

export class SimCluster {
  readonly nodes: SimNode[] = [];
  readonly net: SimNetwork;
  readonly checker = new SafetyChecker();
  readonly stats: ClusterStats = { crashes: 0, restarts: 0, elections: 0, snapshotsCreated: 0, snapshotsInstalled: 0, tornWrites: 0 };
  /** Id of the node that starts outside the group (the operator cycles it in). */
  readonly spareId: NodeId;
  private readonly restartPending = new Set<NodeId>();
  /** Set once the run heals: crashes still happen but every node comes back soon. */
  restartDelayMsMax = 1000;

  constructor(
    readonly scheduler: Scheduler,
    private readonly rand: SimRand,
    private readonly options: ClusterOptions,
  ) {
    this.net = new SimNetwork(rand.fork(), scheduler, {
      deliver: (m) => this.node(m.to)?.receive(m),
      isUp: (id) => this.node(id)?.up ?? false,
      snapshotStatus: (from, to, ok) => this.node(from)?.reportSnapshot(to, ok),
      unreachable: (from, to) => this.node(from)?.reportUnreachable(to),
    }, options.network);
    const env = this.nodeEnv();
    const voterIds = Array.from({ length: options.voters }, (_, i) => i + 1);
    this.spareId = options.voters + 1;
    for (let id = 1; id <= this.spareId; id++) {
      const disk = new SimDisk(rand.fork(), options.disk, { onAppend: (ents, store) => this.checker.onAppend(id, ents, store) });
      if (id !== this.spareId) RaftNode.bootstrap(disk, voterIds);
      this.nodes.push(new SimNode(id, disk, env));
    }
  }

  private nodeEnv(): NodeEnv {
    const o = this.options;
    return {
      rand: this.rand.fork(),
      raft: o.raft,
      snapshotEveryEntries: o.snapshotEveryEntries,
      readyRoundsMax: o.readyRoundsMax,
      checker: this.checker,
      send: (m: Message) => this.net.send(m),
      makeKv: o.makeKv,
      leaders: () => this.leaders(),
      crashed: (id) => this.afterCrash(id),
      stats: this.stats,
      staleReads: o.staleReads,
    };
  }

  node(id: NodeId): SimNode | undefined {
    return this.nodes[id - 1];
  }

  start(): void {
    for (const n of this.nodes) {
      n.start();
      // Ticks are offset per node, and each node's clock runs a little fast or slow (±20 %), so
      // that timers neither fire in the same millisecond nor keep the same pace.
      const tickMs = this.options.tickMs;
      const periodMs = this.rand.range(Math.ceil(tickMs * 0.8), Math.floor(tickMs * 1.2));
      this.scheduler.after(this.rand.range(1, tickMs), `tick n${n.id}`, () => this.tickLoop(n, periodMs));
    }
  }

  private tickLoop(n: SimNode, periodMs: number): void {
    n.tick();
    this.scheduler.after(periodMs, `tick n${n.id}`, () => this.tickLoop(n, periodMs));
  }

  leaders(): { id: NodeId; term: number; store: SimDisk }[] {
    const out: { id: NodeId; term: number; store: SimDisk }[] = [];
    for (const n of this.nodes) {
      const v = n.view();
      if (v?.role === "leader") out.push({ id: n.id, term: v.term, store: n.disk });
    }
    return out;
  }

  /** Election safety and leader completeness for every node that now believes it leads. */
  checkStep(): void {
    for (const l of this.leaders()) {
      const before = this.checker.leadersSeen;
      this.checker.onLeader(l.id, l.term, l.store);
      if (this.checker.leadersSeen > before) this.stats.elections++;
    }
  }

  crash(id: NodeId): void {
    const n = this.node(id);
    if (n === undefined || !n.up) return;
    n.crash();
    this.afterCrash(id);
  }

  private afterCrash(id: NodeId): void {
    this.stats.crashes++;
    this.scheduler.note(`crash n${id}`);
    if (this.restartPending.has(id)) return;
    this.restartPending.add(id);
    this.scheduler.after(this.rand.range(20, this.restartDelayMsMax), `restart n${id}`, () => this.restart(id));
  }

  restart(id: NodeId): void {
    this.restartPending.delete(id);
    const n = this.node(id);
    if (n === undefined || n.up) return;
    n.start();
    this.stats.restarts++;
  }

  downCount(): number {
    return this.nodes.filter((n) => !n.up).length;
  }

  /** Heals the network and restarts every node now. */
  healAll(): void {
    this.net.heal();
    this.net.resetLossRate();
    this.restartDelayMsMax = 20;
    for (const n of this.nodes) if (!n.up) this.restart(n.id);
  }
}
