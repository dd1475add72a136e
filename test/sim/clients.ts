// Simulated clients: K sequential processes issuing put/get/delete/cas on a few keys with
// values unique to the run. Each request goes to a random node (followers forward proposals
// and ReadIndex to the leader), times out and is retried with the same (clientId, seq) so the
// state machine's de-duplication is exercised. Every operation lands in the history as ok,
// fail (surely not applied) or info (unknown) for the linearizability checker.

import type { HistoryRecorder, KvInput, KvOutput, OpHandle } from "../linearizability/index.ts";
import type { KvCommand } from "./kv.ts";
import type { SimRand } from "./rng.ts";
import type { Scheduler } from "./scheduler.ts";
import type { SimNode } from "./sim-node.ts";

export interface ClientOptions {
  clients: number;
  keys: number;
  thinkMsMax: number;
  requestTimeoutMs: number;
  /** Attempts per operation (first try included) before it is recorded as fail/info. */
  attemptsMax: number;
  /** Attempts for the final probe writes and reads, which must succeed once faults are healed. */
  finalAttemptsMax: number;
  latencyMsMax: number;
}

export interface ClientTarget {
  nodes(): readonly SimNode[];
}

export interface ClientStats {
  ok: number;
  fail: number;
  info: number;
  retries: number;
}

interface InFlight {
  handle: OpHandle;
  input: KvInput;
  cmd: KvCommand | undefined;
  attempts: number;
  attemptsMax: number;
  mayHaveTakenEffect: boolean;
  final: boolean;
}

const nsPerMs = 1_000_000;

class Client {
  private seq = 0;
  private token = 0;
  private op: InFlight | undefined;
  readonly forced: KvInput[] = [];
  /** Versions this client last saw per key, so that some cas operations can succeed. */
  private readonly seenVersion = new Map<string, number>();

  constructor(
    readonly id: number,
    private readonly d: ClientDriver,
  ) {}

  get idle(): boolean {
    return this.op === undefined;
  }

  next(): void {
    if (this.op !== undefined) return;
    const forced = this.forced.shift();
    if (forced === undefined && this.d.stopped) return;
    const input = forced ?? this.randomInput();
    const cmd = input.op === "get" ? undefined : { clientId: this.id, seq: ++this.seq, atMs: this.d.scheduler.now, input };
    const handle = this.d.history.invoke(this.id, input, this.d.scheduler.now * nsPerMs);
    const attemptsMax = forced === undefined ? this.d.options.attemptsMax : this.d.options.finalAttemptsMax;
    this.op = { handle, input, cmd, attempts: 0, attemptsMax, mayHaveTakenEffect: false, final: forced !== undefined };
    this.attempt();
  }

  private randomInput(): KvInput {
    const r = this.d.rand;
    const key = `k${r.intn(this.d.options.keys)}`;
    const value = `c${this.id}.${this.seq + 1}`;
    const p = r.float();
    if (p < 0.35) return { op: "put", key, value };
    if (p < 0.65) return { op: "get", key };
    if (p < 0.8) return { op: "delete", key };
    const expectedVersion = r.chance(0.7) ? (this.seenVersion.get(key) ?? 0) : r.intn(4);
    return { op: "cas", key, expectedVersion, value };
  }

  private attempt(): void {
    const op = this.op;
    if (op === undefined) return;
    op.attempts++;
    if (op.attempts > 1) this.d.stats.retries++;
    const token = ++this.token;
    const node = this.d.rand.pick(this.d.target.nodes());
    const s = this.d.scheduler;
    s.after(this.d.latencyMs(), `c${this.id} req n${node.id}`, () => this.arrive(node, op, token));
    s.after(this.d.options.requestTimeoutMs, `c${this.id} timeout`, () => {
      if (token === this.token) this.retryOrGiveUp();
    });
  }

  private arrive(node: SimNode, op: InFlight, token: number): void {
    if (token !== this.token || !node.responsive) return; // a down or stalled node never answers: the timeout fires
    const answer = (out: KvOutput): void => this.d.scheduler.after(this.d.latencyMs(), `c${this.id} ans`, () => this.answered(token, out));
    let accepted: boolean;
    if (op.cmd === undefined) {
      const key = op.input.key;
      accepted = node.read(key, (r) => answer({ op: "get", value: r.value, version: r.version }));
    } else {
      accepted = node.propose(op.cmd, answer);
      if (accepted) op.mayHaveTakenEffect = true;
    }
    if (!accepted) {
      // Back off before retrying: a refusal (no leader yet) comes back fast and would otherwise
      // burn every attempt within one election.
      const backoffMs = this.d.rand.range(Math.floor(this.d.options.requestTimeoutMs / 4), Math.floor(this.d.options.requestTimeoutMs / 2));
      this.d.scheduler.after(this.d.latencyMs() + backoffMs, `c${this.id} rejected`, () => {
        if (token === this.token) this.retryOrGiveUp();
      });
    }
  }

  private answered(token: number, out: KvOutput): void {
    const op = this.op;
    if (token !== this.token || op === undefined) return;
    this.d.history.ok(op.handle, out, this.d.scheduler.now * nsPerMs);
    this.d.scheduler.note(JSON.stringify(out)); // outputs are part of the trace: replays must answer alike
    this.d.stats.ok++;
    if (op.final) this.d.finalOk++;
    if (out.op === "get") this.seenVersion.set(op.input.key, out.version ?? 0);
    if (out.op === "put" && out.version !== undefined) this.seenVersion.set(op.input.key, out.version);
    this.done();
  }

  private retryOrGiveUp(): void {
    const op = this.op;
    if (op === undefined) return;
    if (op.attempts < op.attemptsMax) {
      this.attempt();
      return;
    }
    if (op.mayHaveTakenEffect) {
      this.d.history.info(op.handle);
      this.d.stats.info++;
    } else {
      this.d.history.fail(op.handle);
      this.d.stats.fail++;
    }
    this.done();
  }

  private done(): void {
    this.op = undefined;
    this.token++;
    this.d.scheduler.after(this.d.rand.range(0, this.d.options.thinkMsMax), `c${this.id} next`, () => this.next());
  }
}

export class ClientDriver {
  readonly stats: ClientStats = { ok: 0, fail: 0, info: 0, retries: 0 };
  private readonly clients: Client[] = [];
  stopped = false;
  /** Final (forced) operations that completed ok: liveness evidence. */
  finalOk = 0;

  constructor(
    readonly scheduler: Scheduler,
    readonly rand: SimRand,
    readonly target: ClientTarget,
    readonly history: HistoryRecorder<KvInput, KvOutput>,
    readonly options: ClientOptions,
  ) {
    for (let i = 1; i <= options.clients; i++) this.clients.push(new Client(i, this));
  }

  start(): void {
    for (const c of this.clients) this.scheduler.after(this.rand.range(0, this.options.thinkMsMax), `c${c.id} next`, () => c.next());
  }

  latencyMs(): number {
    return this.rand.range(1, this.options.latencyMsMax);
  }

  get idle(): boolean {
    return this.clients.every((c) => c.idle && c.forced.length === 0);
  }

  keys(): string[] {
    return Array.from({ length: this.options.keys }, (_, i) => `k${i}`);
  }

  /** Stops random operations and queues one probe write and a read of every key: the end-of-run checks. */
  finish(): number {
    this.stopped = true;
    const keys = this.keys();
    const first = this.clients[0]!;
    first.forced.push({ op: "put", key: keys[0]!, value: "final-probe" });
    keys.forEach((key, i) => this.clients[i % this.clients.length]!.forced.push({ op: "get", key }));
    for (const c of this.clients) if (c.idle) this.scheduler.after(0, `c${c.id} next`, () => c.next());
    return keys.length + 1;
  }
}
