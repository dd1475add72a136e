// Typed errors of the replicated state machine: a stable code for callers, a message that says
// what was being done, and for command validation the offending field and the reason.

export type StateErrorCode = "migration_refused" | "snapshot_invalid" | "apply_out_of_order" | "read_invalid";

export class StateError extends Error {
  constructor(
    readonly code: StateErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "StateError";
  }
}

/** A command that fails validation: raised before proposal, so nothing reaches the log. */
export class CommandError extends Error {
  readonly code = "invalid_command";
  constructor(
    readonly commandType: string,
    readonly field: string,
    readonly reason: string,
  ) {
    super(`invalid command ${commandType}: field "${field}" ${reason}`);
    this.name = "CommandError";
  }
}
