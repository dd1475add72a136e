// The Wing–Gong–Lowe search for one partition of a history: walk a list of call/return events,
// tentatively linearize calls the model accepts, backtrack at a return whose call is not yet
// linearized, and memoize (set of linearized operations, model state) pairs so that no search
// node is explored twice (Lowe, "Testing for linearizability", 2017; as in Porcupine).

import type { Operation } from "./history.ts";
import type { Model } from "./model.ts";

/** Where the search got furthest before failing: the basis of a readable counterexample. */
export interface FurthestPoint<State> {
  /** Operation indices (into the searched array) in the order they were linearized. */
  linearized: number[];
  /** States after each linearized operation. */
  states: State[];
  /** The state after the last linearized operation (the initial state if there is none). */
  stateAtFailure: State;
  /** Index of the operation whose return was reached before it could be linearized. */
  stuck: number;
  /** Indices of the operations invoked but not linearized at that return (the stuck one included). */
  pending: number[];
}

export type SearchResult<State> =
  | { kind: "ok"; order: number[] }
  | { kind: "fail"; furthest: FurthestPoint<State> }
  | { kind: "timeout" };

/** Checks the deadline once per this many search steps (reading the clock is not free). */
const deadlineCheckEverySteps = 1024;

/** The doubly linked event list with O(1) removal and reinsertion of an operation's events. */
class EventList {
  /** Node 0 is the head sentinel; events are nodes 1..2n in time order; -1 is "none". */
  readonly next: Int32Array;
  readonly prev: Int32Array;
  readonly opOf: Int32Array;
  readonly isCall: Uint8Array;
  /** For a call node, the node of its return. */
  readonly match: Int32Array;

  constructor(ops: readonly Operation<unknown, unknown>[]) {
    const events: { t: number; call: boolean; op: number }[] = [];
    ops.forEach((op, i) => {
      events.push({ t: op.invokeNs, call: true, op: i }, { t: op.returnNs, call: false, op: i });
    });
    // Equal times: calls first, so operations that touch at an instant count as concurrent.
    events.sort((a, b) => a.t - b.t || Number(b.call) - Number(a.call) || a.op - b.op);
    const size = events.length + 1;
    this.next = new Int32Array(size);
    this.prev = new Int32Array(size);
    this.opOf = new Int32Array(size).fill(-1);
    this.isCall = new Uint8Array(size);
    this.match = new Int32Array(size).fill(-1);
    const callNode = new Int32Array(ops.length);
    events.forEach((e, i) => {
      const node = i + 1;
      this.opOf[node] = e.op;
      this.isCall[node] = e.call ? 1 : 0;
      if (e.call) callNode[e.op] = node;
      else this.match[callNode[e.op] ?? 0] = node;
    });
    for (let node = 0; node < size; node++) {
      this.next[node] = node + 1 < size ? node + 1 : -1;
      this.prev[node] = node - 1;
    }
  }

  private unlink(node: number): void {
    const p = this.prev[node] ?? -1;
    const n = this.next[node] ?? -1;
    this.next[p] = n;
    if (n !== -1) this.prev[n] = p;
  }

  private relink(node: number): void {
    const p = this.prev[node] ?? -1;
    const n = this.next[node] ?? -1;
    this.next[p] = node;
    if (n !== -1) this.prev[n] = node;
  }

  /** Removes a call and its return; `unlift` must undo lifts in reverse order. */
  lift(call: number): void {
    this.unlink(call);
    this.unlink(this.match[call] ?? -1);
  }

  unlift(call: number): void {
    this.relink(this.match[call] ?? -1);
    this.relink(call);
  }
}

/** Deterministic per-operation 32-bit keys for an incremental (Zobrist) hash of the bitset. */
function zobrist(i: number, salt: number): number {
  let x = (i * 0x9e3779b9 + salt) | 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** 32-bit FNV-1a of a string, to fold the model's state hash into a numeric cache key. */
function stringHash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

interface Visited<State> {
  /** Where this entry's copy of the linearized-set bitset starts in the arena. */
  offset: number;
  stateHash: string;
  state: State;
}

/**
 * Visited (linearized set, state) pairs, bucketed by a 53-bit numeric hash of both. The bitset
 * copies live in one growing arena: a search can visit millions of nodes, and a typed array per
 * node costs more in allocation and GC than the rest of the search step.
 */
class VisitedCache<State> {
  private readonly buckets = new Map<number, Visited<State> | Visited<State>[]>();
  private arena: Uint32Array;
  private used = 0;

  constructor(
    private readonly model: Model<State, unknown, unknown>,
    private readonly words: number,
  ) {
    this.arena = new Uint32Array(words * 1024);
  }

  /** Adds the pair; false if it was already there. */
  add(hashLo: number, hashHi: number, bits: Uint32Array, state: State): boolean {
    const stateHash = this.model.hash(state);
    const key = (hashHi & 0x1fffff) * 0x100000000 + ((hashLo ^ stringHash(stateHash)) >>> 0);
    const bucket = this.buckets.get(key);
    if (bucket === undefined) {
      this.buckets.set(key, this.store(bits, stateHash, state));
      return true;
    }
    const list = Array.isArray(bucket) ? bucket : [bucket];
    for (const seen of list) {
      if (seen.stateHash === stateHash && this.sameBits(seen.offset, bits) && this.model.equal(seen.state, state)) {
        return false;
      }
    }
    list.push(this.store(bits, stateHash, state));
    if (list.length === 2) this.buckets.set(key, list);
    return true;
  }

  private store(bits: Uint32Array, stateHash: string, state: State): Visited<State> {
    if (this.used + this.words > this.arena.length) {
      const grown = new Uint32Array(this.arena.length * 2);
      grown.set(this.arena);
      this.arena = grown;
    }
    const offset = this.used;
    this.arena.set(bits, offset);
    this.used += this.words;
    return { offset, stateHash, state };
  }

  private sameBits(offset: number, bits: Uint32Array): boolean {
    for (let i = 0; i < bits.length; i++) if (this.arena[offset + i] !== bits[i]) return false;
    return true;
  }
}

/**
 * Searches for a linearization of `ops`. Indeterminate operations (status "info") have their
 * return at +∞: they may be linearized anywhere after their call, or left out entirely.
 */
export function searchLinearization<State, Input, Output>(
  model: Model<State, Input, Output>,
  ops: readonly Operation<Input, Output>[],
  deadlineMs: number,
  nowMs: () => number,
): SearchResult<State> {
  const list = new EventList(ops);
  const bits = new Uint32Array(Math.ceil(ops.length / 32) || 1);
  const keysLo = ops.map((_, i) => zobrist(i, 0x1234567));
  const keysHi = ops.map((_, i) => zobrist(i, 0x7654321));
  let hashLo = 0;
  let hashHi = 0;
  const toggle = (op: number): void => {
    bits[op >>> 5]! ^= 1 << (op & 31);
    hashLo = (hashLo ^ (keysLo[op] ?? 0)) >>> 0;
    hashHi = (hashHi ^ (keysHi[op] ?? 0)) >>> 0;
  };
  const cache = new VisitedCache<State>(model as Model<State, unknown, unknown>, bits.length);
  const calls: number[] = [];
  const states: State[] = [];
  let state = model.init();
  let furthest: FurthestPoint<State> | undefined;
  let steps = 0;
  let node = list.next[0] ?? -1;
  while (node !== -1 && list.next[0] !== -1) {
    if (++steps % deadlineCheckEverySteps === 0 && nowMs() > deadlineMs) return { kind: "timeout" };
    const opIndex = list.opOf[node] ?? -1;
    const op = ops[opIndex]!;
    if (list.isCall[node] === 1) {
      const result = model.step(state, op.input, op.output);
      if (result.ok) {
        toggle(opIndex);
        if (cache.add(hashLo, hashHi, bits, result.newState)) {
          calls.push(node);
          states.push(state);
          state = result.newState;
          list.lift(node);
          node = list.next[0] ?? -1;
          continue;
        }
        toggle(opIndex);
      }
      node = list.next[node] ?? -1;
      continue;
    }
    // A return: its call is not linearized. Indeterminate returns sort last (+∞), so reaching
    // one means every definite operation is linearized; the rest may never have happened.
    if (op.status === "info") break;
    if (furthest === undefined || calls.length > furthest.linearized.length) {
      furthest = snapshotFurthest(list, calls, states, state, node);
    }
    const call = calls.pop();
    const previous = states.pop();
    if (call === undefined || previous === undefined) return { kind: "fail", furthest };
    state = previous;
    toggle(list.opOf[call] ?? -1);
    list.unlift(call);
    node = list.next[call] ?? -1;
  }
  return { kind: "ok", order: calls.map((c) => list.opOf[c] ?? -1) };
}

function snapshotFurthest<State>(
  list: EventList,
  calls: readonly number[],
  states: readonly State[],
  state: State,
  returnNode: number,
): FurthestPoint<State> {
  const pending: number[] = [];
  for (let n = list.next[0] ?? -1; n !== -1 && n !== returnNode; n = list.next[n] ?? -1) {
    if (list.isCall[n] === 1) pending.push(list.opOf[n] ?? -1);
  }
  return {
    linearized: calls.map((c) => list.opOf[c] ?? -1),
    states: calls.length === 0 ? [] : [...states.slice(1), state],
    stateAtFailure: state,
    stuck: list.opOf[returnNode] ?? -1,
    pending,
  };
}
