// Entry point of the linearizability checker: split a history into independent partitions
// (per key for the key/value model), search each with Wing–Gong–Lowe (wgl.ts), and on failure
// shrink the failing partition to a small counterexample and render it (shrink.ts, render.ts).

import { performance } from "node:perf_hooks";
import type { Operation } from "./history.ts";
import { LinearizabilityError } from "./model.ts";
import type { Model } from "./model.ts";
import { describeCounterexample } from "./render.ts";
import type { Counterexample } from "./render.ts";
import { shrinkCounterexample } from "./shrink.ts";
import { searchLinearization } from "./wgl.ts";
import type { FurthestPoint } from "./wgl.ts";

export interface CheckOptions {
  /** Budget for the whole search across all partitions; past it the answer is "unknown". */
  timeoutMs?: number;
  /** Extra budget for shrinking a failing partition; when it runs out the larger one is shown. */
  shrinkTimeoutMs?: number;
  /** Monotonic milliseconds; injectable so that tests can force a timeout. */
  nowMs?: () => number;
}

export const defaultCheckTimeoutMs = 30_000;
export const defaultShrinkTimeoutMs = 2_000;

export type CheckResult<Input, Output> =
  | { ok: true; partitions: number; operations: number }
  | {
      ok: false;
      /** Label of the first partition found not linearizable. */
      partition: string;
      counterexample: Counterexample<Input, Output>;
      /** Multi-line rendering of the counterexample, ready to print with the failing seed. */
      description: string;
    }
  | { ok: "unknown"; timedOutPartitions: string[]; description: string };

/**
 * Decides whether `history` is linearizable with respect to `model`. Indeterminate operations
 * (status "info") may take effect at any time after their invocation or never.
 */
export function checkLinearizable<State, Input, Output>(
  model: Model<State, Input, Output>,
  history: readonly Operation<Input, Output>[],
  options: CheckOptions = {},
): CheckResult<Input, Output> {
  const nowMs = options.nowMs ?? (() => performance.now());
  const timeoutMs = options.timeoutMs ?? defaultCheckTimeoutMs;
  const shrinkTimeoutMs = options.shrinkTimeoutMs ?? defaultShrinkTimeoutMs;
  const deadlineMs = nowMs() + timeoutMs;
  const ops = prepare(model, history);
  const partitions = model.partition(ops);
  const timedOut: string[] = [];
  for (const part of partitions) {
    const sorted = [...part.operations].sort((a, b) => a.invokeNs - b.invokeNs || a.id - b.id);
    const result = searchLinearization(model, sorted, deadlineMs, nowMs);
    if (result.kind === "timeout") timedOut.push(part.label);
    if (result.kind !== "fail") continue;
    const shrinkDeadlineMs = nowMs() + shrinkTimeoutMs;
    const small = shrinkCounterexample(model, sorted, shrinkDeadlineMs, nowMs);
    const search = { deadlineMs: shrinkDeadlineMs + shrinkTimeoutMs, nowMs };
    const counterexample = explain(model, part.label, { small, full: sorted, fullFurthest: result.furthest }, search);
    return {
      ok: false,
      partition: part.label,
      counterexample,
      description: describeCounterexample(model, counterexample),
    };
  }
  if (timedOut.length > 0) {
    const description =
      `linearizability unknown: the search ran out of its ${timeoutMs} ms budget ` +
      `on ${timedOut.length} of ${partitions.length} partitions (${timedOut.slice(0, 5).join(", ")}` +
      `${timedOut.length > 5 ? ", …" : ""}); raise timeoutMs or record a shorter or less concurrent history`;
    return { ok: "unknown", timedOutPartitions: timedOut, description };
  }
  return { ok: true, partitions: partitions.length, operations: ops.length };
}

/** Validates the history and drops indeterminate reads, which carry no information. */
function prepare<State, Input, Output>(
  model: Model<State, Input, Output>,
  history: readonly Operation<Input, Output>[],
): Operation<Input, Output>[] {
  const ids = new Set<number>();
  const out: Operation<Input, Output>[] = [];
  for (const op of history) {
    if (ids.has(op.id)) {
      throw new LinearizabilityError("duplicate-id", `checking history: operation id #${op.id} occurs twice`);
    }
    ids.add(op.id);
    if (!(op.returnNs >= op.invokeNs) || !Number.isFinite(op.invokeNs)) {
      throw new LinearizabilityError(
        "bad-interval",
        `checking history: operation #${op.id} has invocation ${op.invokeNs} ns and return ${op.returnNs} ns`,
      );
    }
    if (op.status === "info" && model.isReadOnly(op.input, undefined)) continue;
    out.push(op);
  }
  return out;
}

/** Builds the counterexample from the shrunk history, or from the full search if shrinking gave nothing. */
function explain<State, Input, Output>(
  model: Model<State, Input, Output>,
  label: string,
  found: { small: Operation<Input, Output>[]; full: Operation<Input, Output>[]; fullFurthest: FurthestPoint<State> },
  search: { deadlineMs: number; nowMs: () => number },
): Counterexample<Input, Output> {
  const { small, full, fullFurthest } = found;
  // The shrunk history failed within the shrink budget and the search is deterministic, so
  // searching it again (for its own furthest point) fits in a second budget of the same size.
  const again = searchLinearization(model, small, search.deadlineMs, search.nowMs);
  const [ops, furthest] = again.kind === "fail" ? [small, again.furthest] : [full, fullFurthest];
  const at = (i: number): Operation<Input, Output> => {
    const op = ops[i];
    if (op === undefined) throw new LinearizabilityError("internal", `explaining ${label}: no operation at index ${i}`);
    return op;
  };
  return {
    partition: label,
    partitionSize: full.length,
    operations: ops,
    longestLinearizablePrefix: furthest.linearized.map((i, k) => ({
      operation: at(i),
      stateAfter: model.describeState(furthest.states[k] as State),
    })),
    stateAtFailure: model.describeState(furthest.stateAtFailure),
    stuck: at(furthest.stuck),
    pending: furthest.pending.map(at),
  };
}
