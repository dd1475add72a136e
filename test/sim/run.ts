// One simulator run for one seed: build the cluster, clients, operator and faults; run the
// chaos phase for a number of events with the safety checks after each; then heal every fault
// and demand liveness (a probe write and a read of every key complete within a bounded virtual
// time), convergence of the replicas, and linearizability of the whole client history.

import { checkLinearizable, HistoryRecorder, kvModel, type KvInput, type KvOutput } from "../linearizability/index.ts";
import { InvariantViolation } from "./checks.ts";
import { ClientDriver, type ClientStats } from "./clients.ts";
import { SimCluster, type ClusterStats } from "./cluster.ts";
import { defaultNetworkOptions } from "./network.ts";
import { Faults, type FaultStats } from "./faults.ts";
import { StateMachineKv, type ReplicatedKv } from "./kv.ts";
import { Operator, type OperatorStats } from "./operator.ts";
import { SimRand } from "./rng.ts";
import { Scheduler } from "./scheduler.ts";
import type { RaftTuning } from "./sim-node.ts";

export interface RunOptions {
  seed: number;
  voters: number;
  /** Events in the chaos phase (each followed by the safety checks). */
  steps: number;
  /** Self-test fault: chance that the disks acknowledge an fsync without persisting. */
  syncLieRate?: number;
  /** Self-test fault: nodes answer reads locally, skipping ReadIndex. */
  staleReads?: boolean;
  makeKv?: () => ReplicatedKv;
  log?: (line: string) => void;
}

export interface RunResult {
  seed: number;
  voters: number;
  violation: Error | undefined;
  traceHash: string;
  virtualMs: number;
  events: number;
  operations: number;
  cluster: ClusterStats;
  clients: ClientStats;
  faults: FaultStats;
  operator: OperatorStats;
}

/** Virtual time allowed after healing for the final probe and reads (liveness bound). */
export const settleMsMax = 30_000;
/** Virtual time allowed after the final reads for every member to apply the same index. */
export const convergeMsMax = 10_000;
/** Wall-clock budget of the linearizability search per run. */
export const checkTimeoutMs = 20_000;

export function runSeed(o: RunOptions): RunResult {
  const rand = new SimRand(o.seed);
  const scheduler = new Scheduler();
  const tuning = drawTuning(rand.fork());
  o.log?.(`seed ${o.seed}: ${JSON.stringify(tuning)}`);
  const cluster = new SimCluster(scheduler, rand.fork(), {
    voters: o.voters,
    tickMs: 10,
    raft: tuning.raft,
    disk: { keepEntries: tuning.keepEntries, syncLieRate: o.syncLieRate ?? 0 },
    network: defaultNetworkOptions,
    snapshotEveryEntries: tuning.snapshotEveryEntries,
    readyRoundsMax: 1000,
    staleReads: o.staleReads ?? false,
    makeKv: o.makeKv ?? (() => new StateMachineKv()),
  });
  const history = new HistoryRecorder<KvInput, KvOutput>();
  const clients = new ClientDriver(scheduler, rand.fork(), { nodes: () => cluster.nodes }, history, {
    clients: o.voters + 1, keys: 3, thinkMsMax: 30, requestTimeoutMs: 300, attemptsMax: 3, finalAttemptsMax: 60, latencyMsMax: 5,
  });
  const operator = new Operator(scheduler, rand.fork(), cluster.nodes, cluster.spareId, {
    actEveryMsMin: 100, actEveryMsMax: 600, transferChance: 0.3, removeLeaderChance: 0.2, viaFollowerChance: 0.25,
  });
  const faults = new Faults(scheduler, rand.fork(), cluster, {
    everyMsMin: 30, everyMsMax: 300, downMax: Math.floor(o.voters / 2), repairAfterMsMax: 1500, lossSpikeRate: 0.3,
  });
  let violation: Error | undefined;
  try {
    cluster.start();
    clients.start();
    operator.start();
    faults.start();
    for (let i = 0; i < o.steps && scheduler.step(); i++) cluster.checkStep();
    faults.stop();
    operator.stopped = true;
    cluster.healAll();
    o.log?.(`seed ${o.seed}: healed at ${scheduler.now} ms`);
    settle(scheduler, cluster, clients);
    converge(scheduler, cluster);
    checkHistory(history);
  } catch (err) {
    violation = err instanceof Error ? err : new Error(String(err));
  } finally {
    for (const n of cluster.nodes) if (n.up) n.crash();
  }
  return {
    seed: o.seed, voters: o.voters, violation, traceHash: scheduler.traceHash, virtualMs: scheduler.now,
    events: scheduler.eventsRun, operations: history.size,
    cluster: cluster.stats, clients: clients.stats, faults: faults.stats, operator: operator.stats,
  };
}

/**
 * Per-seed settings, drawn from the seed: small message, batch and window bounds force the
 * paths (probing, many Readies, dropped proposals, frequent snapshots) that defaults hide.
 */
function drawTuning(r: SimRand): { raft: RaftTuning; keepEntries: number; snapshotEveryEntries: number } {
  return {
    raft: {
      electionTick: 10,
      heartbeatTick: r.range(1, 3),
      maxSizePerMsgBytes: r.pick([256, 4096, 1 << 20]),
      maxInflightMsgs: r.pick([1, 4, 256]),
      maxUncommittedEntriesBytes: r.pick([512, 1 << 20]),
      maxCommittedSizePerReadyBytes: r.pick([256, 8192, 1 << 20]),
      checkQuorum: r.chance(0.75),
      preVote: r.chance(0.75),
    },
    keepEntries: r.pick([0, 5, 50]),
    snapshotEveryEntries: r.pick([10, 40, 200]),
  };
}

function settle(scheduler: Scheduler, cluster: SimCluster, clients: ClientDriver): void {
  const finals = clients.finish();
  const deadlineMs = scheduler.now + settleMsMax;
  while (!clients.idle && scheduler.now < deadlineMs && scheduler.step()) cluster.checkStep();
  if (clients.finalOk < finals) {
    throw new InvariantViolation(
      "liveness",
      `checking liveness: ${clients.finalOk} of ${finals} final operations completed within ${settleMsMax} ms of healing\n` +
        cluster.nodes.map((n) => `  ${n.describe()}`).join("\n"),
    );
  }
}

/** Every member must reach the leader's applied index and hold exactly the same data. */
function converge(scheduler: Scheduler, cluster: SimCluster): void {
  const deadlineMs = scheduler.now + convergeMsMax;
  let detail = "";
  while (scheduler.now < deadlineMs) {
    const leader = cluster.leaders().sort((a, b) => b.term - a.term)[0];
    const lnode = leader === undefined ? undefined : cluster.node(leader.id);
    if (lnode !== undefined) {
      const members = [...lnode.confState.voters, ...lnode.confState.learners].map((id) => cluster.node(id)!);
      const applied = members.map((n) => `${n.id}:${n.applied}`).join(" ");
      const dumps = new Set(members.map((n) => n.dump()));
      if (members.every((n) => n.applied === lnode.applied) && dumps.size === 1) return;
      detail = `applied ${applied}`;
      if (members.every((n) => n.applied === lnode.applied)) {
        throw new InvariantViolation("divergence", `checking convergence: members applied the same index but hold different data (${applied})`);
      }
    }
    if (!scheduler.step()) break;
    cluster.checkStep();
  }
  throw new InvariantViolation(
    "liveness",
    `checking convergence: members did not reach the same applied index within ${convergeMsMax} ms (${detail})\n` +
      cluster.nodes.map((n) => `  ${n.describe()}`).join("\n"),
  );
}

function checkHistory(history: HistoryRecorder<KvInput, KvOutput>): void {
  const result = checkLinearizable(kvModel, history.history(), { timeoutMs: checkTimeoutMs });
  if (result.ok === true) return;
  throw new InvariantViolation("linearizability", `checking linearizability of the client history:\n${result.description}`);
}
