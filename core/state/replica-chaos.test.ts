// Randomized fault test of the Raft driver (RaftHost) through Replica: three and five replicas
// with real SQLite files on the in-memory transport, under a random schedule of partitions
// (one node, the leader, one-way cuts), heals, restarts (a clean close, then reopening the
// data dir; not a kill), leadership transfers, a member joining and leaving, message delays
// and losses, and snapshot-inducing write volume, while clients write (unique keys and
// per-client registers, retried with the same request id) and read (linearizable and local)
// on random nodes. Checked: nothing is thrown out of the driver (uncaught exceptions,
// unhandled rejections), every promise settles within its bound, a leader exists soon after
// the final heal, every acknowledged write is on every member with its value, the replicas
// converge to one checksum, a linearizable read never returns a register value older than one
// acknowledged (or read) before it started, and a refused membership change has no effect.
//
// The schedule (which fault, which node, which client operation, the pauses, which message is
// delayed or lost) comes from seeded random sources; the real event loop's timing (timers,
// setImmediate, SQLite) is not controlled, so a seed reproduces the schedule but not every
// interleaving. A failure prints its seed: rerun with TRIVET_CHAOS_SEED=<seed>;
// TRIVET_CHAOS_SEEDS=<n> runs n seeds per size, TRIVET_CHAOS_RUN_MS sets the faulty spell of
// each run (stretched, up to three times, until at least four faults were drawn), TRIVET_CHAOS_VERBOSE=1 prints each run's counters and TRIVET_CHAOS_TRACE=1 its
// faults and failed writes.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { MemoryHub } from "../raft/driver/memory-transport.ts";
import { ConfChangeType } from "../raft/types.ts";
import { Replica } from "./replica.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | null) => (b ? new TextDecoder().decode(b) : null);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const tickMs = 10;
const proposalTimeoutMs = 800;
const readTimeoutMs = 800;
/** How late past its own timeout a driver promise may settle before it counts as hung. */
const settleSlackMs = 1_500;
const leaderAfterHealMs = 5_000;
const convergeMs = 8_000;
/** A write not acknowledged this long after the final heal is a liveness failure. */
const writeAfterHealMs = 6_000;
const closeBoundMs = 2_000;
/** The faulty spell goes on past its length until this many faults were drawn (a seed can draw long pauses)… */
const faultsMin = 4;
/** …but never past this many times its length. */
const spellStretchMax = 3;
const writersCount = 3;
const readersCount = 2;
const joinerId = 9;

interface Rand {
  next(): number;
  int(n: number): number;
  pick<T>(xs: readonly T[]): T;
}

/** mulberry32: small, fast, good enough to drive a schedule. */
function seeded(seed: number): Rand {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return { next, int, pick: (xs) => xs[int(xs.length)]! };
}

const t0 = performance.now();
const trace = (s: string) => { if (process.env.TRIVET_CHAOS_TRACE) console.log(`${Math.round(performance.now() - t0)} ${s}`); };

type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

class ChaosRun {
  readonly failures: string[] = [];
  readonly replicas = new Map<number, Replica>();
  readonly hub = new MemoryHub();
  /** The founding members, with their addresses. */
  readonly founders: Map<number, string>;
  /** Acknowledged unique-key writes: key → value. */
  readonly acked = new Map<string, string>();
  /** Per writer's register: highest value acknowledged, returned by a finished linearizable read, and written at all. */
  readonly registerAcked: number[] = new Array<number>(writersCount).fill(0);
  readonly registerSeen: number[] = new Array<number>(writersCount).fill(0);
  readonly registerInvoked: number[] = new Array<number>(writersCount).fill(0);
  readonly stats = { writes: 0, writeRetries: 0, linReads: 0, linReadErrors: 0, localReads: 0, faults: 0, restarts: 0, transfers: 0, joined: false, left: false };
  /** A membership change of the joiner that was refused outright (so must not take effect), and one whose outcome is unknown. */
  readonly joinerChange = { refused: "", unknown: false };
  private readonly busy = new Set<number>();
  running = true;

  constructor(readonly dir: string, ids: number[]) {
    this.founders = new Map(ids.map((id) => [id, `n${id}`]));
  }

  open(id: number, bootstrap = true): Promise<Replica> {
    const peers = new Map([...this.founders, [joinerId, `n${joinerId}`]]);
    return Replica.open({
      id, dataDir: path.join(this.dir, `n${id}`), transport: this.hub.transport(id),
      initialMembers: bootstrap ? this.founders : undefined, peerAddresses: peers, snapshotCatchUpEntries: 5,
      host: { tickMs, proposalTimeoutMs, readTimeoutMs, snapshotEveryEntries: 25 },
    });
  }

  up(): Replica[] {
    return [...this.replicas.values()];
  }

  /** Waits for `p` at most boundMs; a promise still pending then is recorded as hung. */
  async bounded<T>(p: Promise<T>, boundMs: number, what: string): Promise<Outcome<T>> {
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<Outcome<T>>((resolve) => {
      timer = setTimeout(() => {
        this.failures.push(`${what} did not settle within ${boundMs} ms`);
        resolve({ ok: false, error: new Error("hung") });
      }, boundMs);
    });
    const settled = p.then((value): Outcome<T> => ({ ok: true, value }), (error: unknown): Outcome<T> => ({ ok: false, error }));
    try {
      return await Promise.race([settled, hung]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** A leader that every running member of its configuration names as leader, if any. */
  agreedLeader(): Replica | undefined {
    for (const leader of this.up().filter((r) => r.host.status().role === "leader")) {
      const members = this.membersOf(leader);
      if (members.every((r) => r.host.leaderInfo().leader === leader.host.id)) return leader;
    }
    return undefined;
  }

  /** The running nodes in `leader`'s configuration (voters and learners). */
  membersOf(leader: Replica): Replica[] {
    const { voters, learners } = leader.host.status().confState;
    return this.up().filter((r) => voters.includes(r.host.id) || learners.includes(r.host.id));
  }

  currentLeader(): Replica | undefined {
    return this.up().find((r) => r.host.status().role === "leader");
  }

  async crash(id: number): Promise<void> {
    const r = this.replicas.get(id);
    if (!r || this.busy.has(id)) return;
    this.busy.add(id);
    this.replicas.delete(id);
    await this.bounded(r.close(), closeBoundMs, `closing n${id}`);
    this.busy.delete(id);
  }

  async restart(id: number): Promise<void> {
    if (this.replicas.has(id) || this.busy.has(id)) return;
    this.busy.add(id);
    this.replicas.set(id, await this.open(id, id !== joinerId));
    this.busy.delete(id);
    this.stats.restarts++;
  }

  isBusy(): boolean {
    return this.busy.size > 0;
  }
}

/** One client: sequential writes, each retried with the same request id until acknowledged. */
async function writer(run: ChaosRun, w: number, rand: Rand): Promise<void> {
  for (let seq = 1; run.running; seq++) {
    const register = rand.next() < 0.3;
    const key = register ? `reg-${w}` : `w${w}-${seq}`;
    const value = String(seq);
    const request = { clientId: `chaos-w${w}`, seq };
    if (register) run.registerInvoked[w] = seq;
    let giveUpAtMs = Infinity;
    for (let attempt = 0; ; attempt++) {
      if (!run.running && giveUpAtMs === Infinity) giveUpAtMs = performance.now() + writeAfterHealMs;
      if (performance.now() > giveUpAtMs) {
        run.failures.push(`write ${key}=${value} (request ${request.clientId}#${seq}) not acknowledged within ${writeAfterHealMs} ms after the final heal`);
        return;
      }
      const node = run.up().length > 0 ? rand.pick(run.up()) : undefined;
      if (!node) { await sleep(20); continue; }
      if (attempt > 0) run.stats.writeRetries++;
      const out = await run.bounded(node.execute({ type: "kv.put", key: enc(key), value: enc(value) }, request), proposalTimeoutMs + settleSlackMs, `write ${key} on n${node.host.id}`);
      if (out.ok) {
        run.stats.writes++;
        if (register) run.registerAcked[w] = seq;
        else run.acked.set(key, value);
        break;
      }
      trace(`write ${key} on n${node.host.id} failed: ${String(out.error)}`);
      await sleep(rand.int(30));
    }
    await sleep(rand.int(5));
  }
}

/** One reader: linearizable register reads (never older than an ack before the read) and local reads. */
async function reader(run: ChaosRun, rand: Rand): Promise<void> {
  while (run.running) {
    const node = run.up().length > 0 ? rand.pick(run.up()) : undefined;
    if (!node) { await sleep(20); continue; }
    const w = rand.int(writersCount);
    if (rand.next() < 0.7) {
      // The writer is sequential, so its register only grows: a read must return at least what
      // was acknowledged, or returned by a read that finished, before it started.
      const floor = Math.max(run.registerAcked[w]!, run.registerSeen[w]!);
      run.stats.linReads++;
      const out = await run.bounded(node.get(enc(`reg-${w}`), "linearizable"), readTimeoutMs + settleSlackMs, `linearizable read on n${node.host.id}`);
      if (!out.ok) { run.stats.linReadErrors++; continue; }
      const got = Number(dec(out.value.value) ?? 0);
      if (got < floor) run.failures.push(`linearizable read of reg-${w} on n${node.host.id} returned ${got}, but ${floor} was acknowledged or read before the read started`);
      if (got > run.registerInvoked[w]!) run.failures.push(`linearizable read of reg-${w} on n${node.host.id} returned ${got}, never written`);
      run.registerSeen[w] = Math.max(run.registerSeen[w]!, got);
    } else {
      const keys = [...run.acked.keys()];
      if (keys.length === 0) { await sleep(5); continue; }
      const key = rand.pick(keys);
      run.stats.localReads++;
      const out = await run.bounded(node.get(enc(key)), settleSlackMs, `local read on n${node.host.id}`);
      const got = out.ok ? dec(out.value.value) : null;
      if (got !== null && got !== run.acked.get(key)) run.failures.push(`local read of ${key} on n${node.host.id} returned ${got}, written ${run.acked.get(key)}`);
    }
    await sleep(rand.int(10));
  }
}

/** Membership: a fresh node joins as a voter, and later leaves (each at most once per run). */
async function changeMembership(run: ChaosRun, rand: Rand): Promise<void> {
  const via = rand.pick(run.up());
  const join = !run.stats.joined;
  if (!join && (run.stats.left || !run.replicas.has(joinerId))) return;
  if (join && !run.replicas.has(joinerId)) run.replicas.set(joinerId, await run.open(joinerId, false));
  const cc = join ? { type: ConfChangeType.AddVoter, nodeId: joinerId, context: enc(`n${joinerId}`) } : { type: ConfChangeType.RemoveNode, nodeId: joinerId };
  const what = `${join ? "adding" : "removing"} n${joinerId} via n${via.host.id}`;
  const out = await run.bounded(via.changeMembership(cc), proposalTimeoutMs + settleSlackMs, what);
  if (!out.ok) {
    // Timed out or stopped: it may still take effect. Anything else is a refusal, which must not.
    const code = (out.error as { code?: string }).code;
    if (code === "timeout" || code === "stopped" || run.joinerChange.unknown) run.joinerChange.unknown = true;
    else run.joinerChange.refused = `${what} refused (${String(out.error)})`;
    return;
  }
  if (join) {
    run.stats.joined = true;
    return;
  }
  run.stats.left = true;
  await run.crash(joinerId);
}

/**
 * One random fault or heal. A partition replaces the previous one (one-way cuts add to it), so
 * the cluster is not starved for the whole run; crashes keep a majority of founders running.
 */
async function fault(run: ChaosRun, rand: Rand, ids: number[], withMembership: boolean): Promise<void> {
  run.stats.faults++;
  const all = [...run.founders.keys(), ...(run.replicas.has(joinerId) ? [joinerId] : [])];
  const isolate = (id: number) => {
    run.hub.cut.clear();
    for (const o of all) if (o !== id) { run.hub.cut.add(`${id}->${o}`); run.hub.cut.add(`${o}->${id}`); }
  };
  const down = ids.filter((id) => !run.replicas.has(id));
  const roll = rand.int(withMembership ? 10 : 9);
  trace(`fault ${roll} cut=[${[...run.hub.cut].join(",")}] down=[${down.join(",")}] leader=${run.currentLeader()?.host.id}`);
  switch (roll) {
    case 0: isolate(rand.pick(all)); return;
    case 1: { const l = run.currentLeader(); if (l) isolate(l.host.id); return; }
    case 2: { const a = rand.pick(all); const b = rand.pick(all.filter((x) => x !== a)); run.hub.cut.add(`${a}->${b}`); return; }
    case 3: case 4: run.hub.cut.clear(); return;
    case 5:
      if (down.length < Math.floor((ids.length - 1) / 2) && !run.isBusy()) await run.crash(rand.pick(ids.filter((id) => run.replicas.has(id))));
      return;
    case 6: if (down.length > 0 && !run.isBusy()) await run.restart(rand.pick(down)); return;
    case 7: case 8: {
      const l = rand.next() < 0.7 ? run.currentLeader() : rand.pick(run.up());
      const to = rand.pick(all);
      if (l && to !== l.host.id) { l.host.transferLeadership(to); run.stats.transfers++; }
      return;
    }
    case 9: if (!run.isBusy() && run.up().length > 0) await changeMembership(run, rand); return;
  }
}

async function waitFor(cond: () => boolean, boundMs: number): Promise<boolean> {
  const end = performance.now() + boundMs;
  while (!cond()) {
    if (performance.now() > end) return false;
    await sleep(10);
  }
  return true;
}

async function chaos(seed: number, ids: number[], runMs: number, withMembership: boolean): Promise<ChaosRun> {
  const rand = seeded(seed);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "trivet-chaos-"));
  const run = new ChaosRun(dir, ids);
  try {
    const net = seeded(seed * 41);
    run.hub.links = { delayMs: () => (net.next() < 0.8 ? 0 : 1 + net.int(10)), drop: () => net.next() < 0.01 };
    for (const id of ids) run.replicas.set(id, await run.open(id));
    const clients = [
      ...Array.from({ length: writersCount }, (_, w) => writer(run, w, seeded(seed * 31 + w))),
      ...Array.from({ length: readersCount }, (_, i) => reader(run, seeded(seed * 37 + i))),
    ];
    const start = performance.now();
    const spellGoesOn = (): boolean => {
      const elapsed = performance.now() - start;
      return elapsed < runMs || (run.stats.faults < faultsMin && elapsed < runMs * spellStretchMax);
    };
    while (spellGoesOn()) {
      await fault(run, rand, ids, withMembership);
      // Mostly short spells, sometimes one longer than every driver timeout (hung promises show).
      await sleep(rand.next() < 0.1 ? 1_000 + rand.int(1_500) : 30 + rand.int(250));
    }
    // Final heal: every founding node back, no cuts; clients finish their current operation.
    run.hub.cut.clear();
    run.hub.links = undefined;
    for (const id of ids) if (!run.replicas.has(id)) await run.restart(id);
    run.running = false;
    if (!(await waitFor(() => run.agreedLeader() !== undefined, leaderAfterHealMs))) {
      run.failures.push(`no leader agreed by all within ${leaderAfterHealMs} ms of the final heal`);
    }
    await Promise.all(clients);
    const leader = run.agreedLeader();
    if (leader) checkMembership(run, leader);
    await checkConverged(run, leader ? run.membersOf(leader) : run.up());
    return run;
  } finally {
    await Promise.all(run.up().map((r) => r.close()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The joiner is a voter exactly when its changes that returned say so (unless one's outcome is unknown). */
function checkMembership(run: ChaosRun, leader: Replica): void {
  if (run.joinerChange.unknown) return;
  const { voters } = leader.host.status().confState;
  if (voters.includes(joinerId) === (run.stats.joined && !run.stats.left)) return;
  const refused = run.joinerChange.refused ? `; ${run.joinerChange.refused}` : "";
  run.failures.push(`n${joinerId} joined=${run.stats.joined} left=${run.stats.left}, but the voters are ${voters.join(",")}${refused}`);
}

/** Every member applied the same log: same checksum, and every acknowledged write present. */
async function checkConverged(run: ChaosRun, members: Replica[]): Promise<void> {
  const same = () => {
    const sums = new Set(members.map((r) => `${r.stateMachine.appliedIndex}:${r.stateMachine.checksum()}`));
    return sums.size === 1;
  };
  if (!(await waitFor(same, convergeMs))) {
    run.failures.push(`replicas did not converge within ${convergeMs} ms: ${members.map((r) => `n${r.host.id}@${r.stateMachine.appliedIndex}`).join(" ")}`);
  }
  for (const r of members) {
    for (const [key, value] of run.acked) {
      const got = dec(r.stateMachine.get(enc(key)).value);
      if (got !== value) { run.failures.push(`acknowledged write ${key}=${value} reads ${got} on n${r.host.id}`); break; }
    }
    run.registerAcked.forEach((floor, w) => {
      const got = Number(dec(r.stateMachine.get(enc(`reg-${w}`)).value) ?? 0);
      if (got < floor) run.failures.push(`reg-${w} on n${r.host.id} is ${got}, below acknowledged ${floor}`);
    });
  }
}

const envSeed = process.env.TRIVET_CHAOS_SEED ? Number(process.env.TRIVET_CHAOS_SEED) : undefined;
const seedsPerSize = Number(process.env.TRIVET_CHAOS_SEEDS ?? "1");
const runMs = Number(process.env.TRIVET_CHAOS_RUN_MS ?? "4000");
const baseSeed = envSeed ?? Math.floor(Math.random() * 2 ** 31);

describe("Replica under random faults", () => {
  const processErrors: string[] = [];
  const onProcessError = (err: unknown) => { processErrors.push(err instanceof Error ? err.stack ?? err.message : String(err)); };
  process.on("uncaughtException", onProcessError);
  process.on("unhandledRejection", onProcessError);
  afterAll(() => {
    process.off("uncaughtException", onProcessError);
    process.off("unhandledRejection", onProcessError);
  });

  const sizes: Array<{ ids: number[]; membership: boolean; runs: number }> = [
    { ids: [1, 2, 3], membership: true, runs: 2 * seedsPerSize },
    { ids: [1, 2, 3, 4, 5], membership: false, runs: seedsPerSize },
  ];
  for (const { ids, membership, runs } of sizes) {
    it(`${ids.length} replicas keep every acknowledged write and stay live (seed ${baseSeed})`, async () => {
      for (let i = 0; i < runs; i++) {
        const seed = envSeed ?? baseSeed + i * 7919 + ids.length;
        const started = processErrors.length;
        const run = await chaos(seed, ids, runMs, membership);
        const report = { seed, nodes: ids.length, ...run.stats, acked: run.acked.size };
        if (process.env.TRIVET_CHAOS_VERBOSE) console.log(JSON.stringify(report));
        const failures = [...run.failures, ...processErrors.slice(started).map((e) => `process error: ${e}`)];
        expect(failures, `chaos seed ${seed} (rerun: TRIVET_CHAOS_SEED=${seed} npx vitest run ${path.relative(process.cwd(), import.meta.filename)} -t "${ids.length} replicas"); ${JSON.stringify(report)}`).toEqual([]);
        // The schedule must have exercised the driver, or the checks above prove nothing.
        expect(run.stats.writes, `seed ${seed}: ${JSON.stringify(report)}`).toBeGreaterThan(10);
        expect(run.stats.faults, `seed ${seed}`).toBeGreaterThan(3);
      }
    }, 120_000);
  }
});
