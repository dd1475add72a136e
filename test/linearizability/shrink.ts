// Shrinks a non-linearizable partition to a small sub-history that is still not linearizable,
// using only reductions that preserve the implication "shrunk fails ⇒ original fails", so the
// shrunk history explains the real failure instead of inventing a new one:
//  1. Cut at the earliest time T where the history up to T already fails (linearizability is
//     prefix-closed; operations still running at T become indeterminate).
//  2. Drop definite read-only operations (a read never changes the state, so removing it can
//     only make the history easier to linearize).
// Removing a write would not be sound: a read of its value would then look like a read of a
// value never written.

import type { Operation } from "./history.ts";
import type { Model } from "./model.ts";
import { searchLinearization } from "./wgl.ts";

type Ops<Input, Output> = Operation<Input, Output>[];

/** The history as it stood at time `cutNs`. */
export function prefixAt<State, Input, Output>(
  model: Model<State, Input, Output>,
  ops: Ops<Input, Output>,
  cutNs: number,
): Ops<Input, Output> {
  const out: Ops<Input, Output> = [];
  for (const op of ops) {
    if (op.invokeNs > cutNs) continue;
    if (op.returnNs <= cutNs) {
      out.push(op);
      continue;
    }
    if (model.isReadOnly(op.input, undefined)) continue;
    out.push({ ...op, status: "info", output: undefined, returnNs: Infinity });
  }
  return out;
}

export function shrinkCounterexample<State, Input, Output>(
  model: Model<State, Input, Output>,
  ops: Ops<Input, Output>,
  deadlineMs: number,
  nowMs: () => number,
): Ops<Input, Output> {
  const fails = (candidate: Ops<Input, Output>): boolean =>
    searchLinearization(model, candidate, deadlineMs, nowMs).kind === "fail";
  const cut = shortestFailingPrefix(model, ops, fails);
  return dropReads(model, cut, fails, deadlineMs, nowMs);
}

function shortestFailingPrefix<State, Input, Output>(
  model: Model<State, Input, Output>,
  ops: Ops<Input, Output>,
  fails: (candidate: Ops<Input, Output>) => boolean,
): Ops<Input, Output> {
  const cuts = [...new Set(ops.filter((op) => op.status === "ok").map((op) => op.returnNs))].sort((a, b) => a - b);
  // Invariant: the prefix at cuts[hi] fails (the last cut keeps every definite operation, and
  // indeterminate operations invoked after it can always be left out). A timed-out probe counts
  // as "does not fail", which only keeps the result larger, never wrong.
  let lo = 0;
  let hi = cuts.length - 1;
  let best = ops;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const candidate = prefixAt(model, ops, cuts[mid] ?? Infinity);
    if (fails(candidate)) {
      best = candidate;
      hi = mid - 1;
    } else {
      lo = mid + 1;
    }
  }
  return best;
}

/** ddmin-style: try dropping chunks of reads, halving the chunk size down to single reads. */
function dropReads<State, Input, Output>(
  model: Model<State, Input, Output>,
  ops: Ops<Input, Output>,
  fails: (candidate: Ops<Input, Output>) => boolean,
  deadlineMs: number,
  nowMs: () => number,
): Ops<Input, Output> {
  let current = ops;
  let reads = current.filter((op) => op.status === "ok" && model.isReadOnly(op.input, op.output)).map((op) => op.id);
  for (let chunk = Math.max(1, reads.length >>> 1); chunk >= 1; chunk = chunk === 1 ? 0 : Math.max(1, chunk >>> 1)) {
    for (let start = 0; start < reads.length; ) {
      if (nowMs() > deadlineMs) return current;
      const drop = new Set(reads.slice(start, start + chunk));
      const candidate = current.filter((op) => !drop.has(op.id));
      if (fails(candidate)) {
        current = candidate;
        reads = reads.filter((id) => !drop.has(id));
      } else {
        start += chunk;
      }
    }
  }
  return current;
}
