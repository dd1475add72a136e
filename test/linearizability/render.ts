// Human-readable rendering of a non-linearizable partition, so that a failing simulator seed or
// cluster run can be debugged from the test output alone: who did what, when, and where the
// search for a valid order got stuck.

import type { Operation } from "./history.ts";
import type { Model } from "./model.ts";

export interface LinearizedStep<Input, Output> {
  operation: Operation<Input, Output>;
  /** The model state after this operation, as `model.describeState` renders it. */
  stateAfter: string;
}

export interface Counterexample<Input, Output> {
  /** Label of the failing partition, e.g. `key "k7"`. */
  partition: string;
  /** Operations in the failing partition (after dropping indeterminate reads). */
  partitionSize: number;
  /** A small sub-history that is still not linearizable, sorted by invocation. */
  operations: Operation<Input, Output>[];
  /** The longest order of `operations` the model accepted before getting stuck. */
  longestLinearizablePrefix: LinearizedStep<Input, Output>[];
  /** State after that prefix. */
  stateAtFailure: string;
  /** The operation whose return came before any valid order could include it. */
  stuck: Operation<Input, Output>;
  /** Operations concurrent at that point that none of the tried orders could place (stuck included). */
  pending: Operation<Input, Output>[];
}

/** Nanoseconds as milliseconds, keeping nanosecond precision without trailing zeros. */
export function formatNs(ns: number): string {
  if (ns === Infinity) return "∞";
  const ms = (ns / 1e6).toFixed(6).replace(/\.?0+$/, "");
  return `${ms}ms`;
}

export function describeOperation<Input, Output>(
  model: Model<unknown, Input, Output>,
  op: Operation<Input, Output>,
): string {
  const when =
    op.status === "info"
      ? `[${formatNs(op.invokeNs)} → ∞, indeterminate]`
      : `[${formatNs(op.invokeNs)} → ${formatNs(op.returnNs)}]`;
  return `#${op.id} client ${String(op.clientId)}: ${model.describeOperation(op.input, op.output)} ${when}`;
}

export function describeCounterexample<Input, Output>(
  model: Model<unknown, Input, Output>,
  cx: Counterexample<Input, Output>,
): string {
  const line = (op: Operation<Input, Output>): string => `    ${describeOperation(model, op)}`;
  const lines = [
    `not linearizable: ${cx.partition} (${cx.partitionSize} operations; ` +
      `a sub-history of ${cx.operations.length} that is already not linearizable follows)`,
    "  operations, by invocation time:",
    ...cx.operations.map(line),
    `  longest linearizable prefix (${cx.longestLinearizablePrefix.length} operations):`,
    ...cx.longestLinearizablePrefix.map((s) => `${line(s.operation)}  ⇒ ${s.stateAfter}`),
    `  then, in state ${cx.stateAtFailure}, ${describeOperation(model, cx.stuck)} returned ` +
      "but no order of the operations pending at that point is valid:",
    ...cx.pending.map(line),
  ];
  return lines.join("\n");
}
