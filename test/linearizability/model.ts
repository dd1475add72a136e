// Sequential specifications for the linearizability checker: the generic Model interface and
// the key/value model that Trivet's replicated state machine must behave like. A model is pure
// data-in/data-out; the checker (checker.ts) searches for an order of a history's operations in
// which every step is accepted by the model.

import type { Operation } from "./history.ts";

/** Thrown when a history cannot be checked at all (a recording bug, not a linearizability bug). */
export class LinearizabilityError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "LinearizabilityError";
    this.code = code;
  }
}

/** A named slice of a history that can be checked on its own (P-compositionality). */
export interface Partition<Input, Output> {
  /** Shown in reports, e.g. `key "vm/web1"`. */
  label: string;
  operations: Operation<Input, Output>[];
}

export interface StepResult<State> {
  ok: boolean;
  newState: State;
}

export interface Model<State, Input, Output> {
  init(): State;
  /**
   * Applies `input` to `state` and says whether the model could have returned `output`.
   * `output` is undefined for an indeterminate operation (timed out, connection lost): the step
   * must then accept whatever the specification would have returned. Must not mutate `state`.
   */
  step(state: State, input: Input, output: Output | undefined): StepResult<State>;
  equal(a: State, b: State): boolean;
  /** Equal states must hash equally; used with `equal` to memoize visited search nodes. */
  hash(state: State): string;
  /**
   * True if the operation never changes the state. Indeterminate read-only operations carry no
   * information and are dropped; definite ones may be dropped while shrinking a counterexample.
   */
  isReadOnly(input: Input, output: Output | undefined): boolean;
  /** Independent sub-histories; checking each separately is equivalent to checking the whole. */
  partition(history: Operation<Input, Output>[]): Partition<Input, Output>[];
  describeOperation(input: Input, output: Output | undefined): string;
  describeState(state: State): string;
}

// ---------------------------------------------------------------------------------------------
// Key/value model.

export type KvInput =
  | { op: "put"; key: string; value: string }
  | { op: "get"; key: string }
  | { op: "delete"; key: string }
  /** expectedVersion 0 matches an absent key (create-if-absent). */
  | { op: "cas"; key: string; expectedVersion: number; value: string };

/** Optional `version` fields are checked when the state machine reports them. */
export type KvOutput =
  | { op: "put"; version?: number }
  | { op: "get"; value: string | null; version?: number }
  | { op: "delete" }
  | { op: "cas"; result: "ok" | "fail" };

export interface KvEntry {
  readonly value: string;
  /** 1 after the first put; +1 on each successful put or cas; a delete makes the key absent. */
  readonly version: number;
}

/** Immutable: steps return a new map. After partitioning by key it holds at most one entry. */
export type KvState = ReadonlyMap<string, KvEntry>;

/** Constructors that keep recording code short: `kv.put("k", "v")`, `kv.getOk("v")`. */
export const kv = {
  put: (key: string, value: string): KvInput => ({ op: "put", key, value }),
  get: (key: string): KvInput => ({ op: "get", key }),
  delete: (key: string): KvInput => ({ op: "delete", key }),
  cas: (key: string, expectedVersion: number, value: string): KvInput => ({ op: "cas", key, expectedVersion, value }),
  putOk: (version?: number): KvOutput => (version === undefined ? { op: "put" } : { op: "put", version }),
  getOk: (value: string | null, version?: number): KvOutput =>
    version === undefined ? { op: "get", value } : { op: "get", value, version },
  deleteOk: (): KvOutput => ({ op: "delete" }),
  casOk: (): KvOutput => ({ op: "cas", result: "ok" }),
  casFail: (): KvOutput => ({ op: "cas", result: "fail" }),
};

function withEntry(state: KvState, key: string, entry: KvEntry | undefined): KvState {
  const next = new Map(state);
  if (entry === undefined) next.delete(key);
  else next.set(key, entry);
  return next;
}

function checkOutputKind(input: KvInput, output: KvOutput | undefined): void {
  if (output !== undefined && output.op !== input.op) {
    throw new LinearizabilityError(
      "output-mismatch",
      `checking key/value history: ${input.op} on key "${input.key}" was recorded with a ${output.op} output; ` +
        "record the output of the operation that was invoked",
    );
  }
}

function kvStep(state: KvState, input: KvInput, output: KvOutput | undefined): StepResult<KvState> {
  checkOutputKind(input, output);
  const current = state.get(input.key);
  switch (input.op) {
    case "put": {
      const version = (current?.version ?? 0) + 1;
      const ok = output?.op !== "put" || output.version === undefined || output.version === version;
      return { ok, newState: withEntry(state, input.key, { value: input.value, version }) };
    }
    case "get": {
      if (output?.op !== "get") return { ok: true, newState: state };
      const valueOk = output.value === (current?.value ?? null);
      const versionOk = output.version === undefined || output.version === (current?.version ?? 0);
      return { ok: valueOk && versionOk, newState: state };
    }
    case "delete":
      return { ok: true, newState: current === undefined ? state : withEntry(state, input.key, undefined) };
    case "cas": {
      const matches = (current?.version ?? 0) === input.expectedVersion;
      const expected = matches ? "ok" : "fail";
      const ok = output?.op !== "cas" || output.result === expected;
      if (!matches) return { ok, newState: state };
      return { ok, newState: withEntry(state, input.key, { value: input.value, version: input.expectedVersion + 1 }) };
    }
  }
}

function hashEntry(key: string, entry: KvEntry): string {
  return `${key.length}:${key}=${entry.version}:${entry.value.length}:${entry.value}`;
}

/** Length-prefixed keys keep the encoding unambiguous; single-key states (the common case after
 * partitioning) skip the sort. */
function kvHash(state: KvState): string {
  if (state.size === 0) return "";
  if (state.size === 1) {
    for (const [key, entry] of state) return hashEntry(key, entry);
  }
  const keys = [...state.keys()].sort();
  return keys.map((k) => hashEntry(k, state.get(k) as KvEntry)).join("\n");
}

function kvPartition(history: Operation<KvInput, KvOutput>[]): Partition<KvInput, KvOutput>[] {
  const byKey = new Map<string, Operation<KvInput, KvOutput>[]>();
  for (const op of history) {
    const list = byKey.get(op.input.key);
    if (list === undefined) byKey.set(op.input.key, [op]);
    else list.push(op);
  }
  return [...byKey.entries()].map(([key, operations]) => ({ label: `key ${JSON.stringify(key)}`, operations }));
}

function describeKvInput(input: KvInput): string {
  const key = JSON.stringify(input.key);
  switch (input.op) {
    case "put":
      return `put(${key}, ${JSON.stringify(input.value)})`;
    case "get":
      return `get(${key})`;
    case "delete":
      return `delete(${key})`;
    case "cas":
      return `cas(${key}, v${input.expectedVersion}, ${JSON.stringify(input.value)})`;
  }
}

function describeKvOutput(output: KvOutput): string {
  switch (output.op) {
    case "put":
      return output.version === undefined ? "ok" : `ok v${output.version}`;
    case "get": {
      const value = output.value === null ? "null" : JSON.stringify(output.value);
      return output.version === undefined ? value : `${value} v${output.version}`;
    }
    case "delete":
      return "ok";
    case "cas":
      return output.result;
  }
}

export const kvModel: Model<KvState, KvInput, KvOutput> = {
  init: () => new Map(),
  step: kvStep,
  equal: (a, b) => kvHash(a) === kvHash(b),
  hash: kvHash,
  isReadOnly: (input, output) =>
    input.op === "get" || (input.op === "cas" && output?.op === "cas" && output.result === "fail"),
  partition: kvPartition,
  describeOperation: (input, output) =>
    `${describeKvInput(input)} → ${output === undefined ? "?" : describeKvOutput(output)}`,
  describeState: (state) => {
    if (state.size === 0) return "{}";
    const parts = [...state.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${parts.map(([k, e]) => `${JSON.stringify(k)}: ${JSON.stringify(e.value)} v${e.version}`).join(", ")}}`;
  },
};
