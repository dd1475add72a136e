// Payload checks shared by the state modules' commands: a payload must be an object, and a field
// check of the area's model (which throws that area's field error) becomes the CommandError of
// the command, naming the field and the reason.
import { CommandError } from "./errors.ts";

/** What an area's field error carries (VmFieldError, StorageFieldError). */
export interface FieldProblem {
  field: string;
  reason: string;
}

export function payloadFields(cmd: string, p: unknown): Record<string, unknown> {
  if (p === null || typeof p !== "object" || Array.isArray(p)) throw new CommandError(cmd, "payload", "must be an object");
  return p as Record<string, unknown>;
}

/** Runs `fn`; an error of class `problem` becomes the CommandError of `cmd`. */
export function checkedPayload<T>(cmd: string, problem: abstract new (...args: never[]) => FieldProblem, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof problem) throw new CommandError(cmd, err.field, err.reason);
    throw err;
  }
}
