// Records what concurrent clients asked for and what they were told, for the linearizability
// checker. The recorder has no clock: the simulator passes its virtual time, real-cluster tests
// pass Number(process.hrtime.bigint() - startNs). Times are nanoseconds.

import { LinearizabilityError } from "./model.ts";

export type ClientId = string | number;

/**
 * One operation as the checker sees it.
 * - "ok": the client got `output` at `returnNs`.
 * - "info": indeterminate (timed out, connection lost). It may have taken effect at any time
 *   after its invocation, or never: its return time is +∞ and its output unknown (Knossos/Jepsen).
 * Operations that definitely did not happen ("fail") are not part of the history.
 */
export interface Operation<Input, Output> {
  /** Position in invocation order, unique within one recorder; used in reports. */
  readonly id: number;
  readonly clientId: ClientId;
  readonly input: Input;
  readonly invokeNs: number;
  readonly status: "ok" | "info";
  /** Undefined when status is "info". */
  readonly output: Output | undefined;
  /** Infinity when status is "info". */
  readonly returnNs: number;
}

/** Returned by `invoke`; pass it back to exactly one of `ok`, `fail` or `info`. */
export interface OpHandle {
  readonly id: number;
}

interface Pending<Input, Output> {
  clientId: ClientId;
  input: Input;
  invokeNs: number;
  outcome: { status: "ok"; output: Output; returnNs: number } | { status: "info" } | { status: "fail" } | undefined;
}

export class HistoryRecorder<Input, Output> {
  private readonly ops: Pending<Input, Output>[] = [];

  invoke(clientId: ClientId, input: Input, atNs: number): OpHandle {
    checkTime(atNs, `recording invocation by client ${String(clientId)}`);
    this.ops.push({ clientId, input, invokeNs: atNs, outcome: undefined });
    return { id: this.ops.length - 1 };
  }

  /** The client received `output` at `atNs`. */
  ok(handle: OpHandle, output: Output, atNs: number): void {
    const op = this.open(handle, "ok");
    checkTime(atNs, `recording completion of operation #${handle.id}`);
    if (atNs < op.invokeNs) {
      throw new LinearizabilityError(
        "time-reversed",
        `recording completion of operation #${handle.id}: returned at ${atNs} ns, before its invocation at ${op.invokeNs} ns`,
      );
    }
    op.outcome = { status: "ok", output, returnNs: atNs };
  }

  /** The operation definitely did not take effect (e.g. rejected before it was proposed). */
  fail(handle: OpHandle): void {
    this.open(handle, "fail").outcome = { status: "fail" };
  }

  /** The outcome is unknown: it may take effect at any later time, or never. */
  info(handle: OpHandle): void {
    this.open(handle, "info").outcome = { status: "info" };
  }

  /** Operations still open when the history is taken are treated as indeterminate. */
  history(): Operation<Input, Output>[] {
    const out: Operation<Input, Output>[] = [];
    this.ops.forEach((op, id) => {
      const outcome = op.outcome ?? { status: "info" };
      if (outcome.status === "fail") return;
      const base = { id, clientId: op.clientId, input: op.input, invokeNs: op.invokeNs };
      if (outcome.status === "ok") out.push({ ...base, status: "ok", output: outcome.output, returnNs: outcome.returnNs });
      else out.push({ ...base, status: "info", output: undefined, returnNs: Infinity });
    });
    return out;
  }

  /** Number of invocations recorded so far (including failed ones). */
  get size(): number {
    return this.ops.length;
  }

  private open(handle: OpHandle, verb: string): Pending<Input, Output> {
    const op = this.ops[handle.id];
    if (op === undefined) {
      throw new LinearizabilityError("unknown-handle", `recording ${verb} of operation #${handle.id}: no such invocation`);
    }
    if (op.outcome !== undefined) {
      throw new LinearizabilityError(
        "already-completed",
        `recording ${verb} of operation #${handle.id}: it was already completed as ${op.outcome.status}`,
      );
    }
    return op;
  }
}

function checkTime(atNs: number, doing: string): void {
  if (!Number.isFinite(atNs)) {
    throw new LinearizabilityError("bad-time", `${doing}: time ${atNs} ns is not a finite number`);
  }
}
