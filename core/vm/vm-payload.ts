// Payload checks shared by the VM state commands: each failure is a CommandError naming the
// command and field.
import { CommandError } from "../state/errors.ts";
import { VmFieldError } from "./vm-model.ts";

export function fields(cmd: string, p: unknown): Record<string, unknown> {
  if (p === null || typeof p !== "object" || Array.isArray(p)) throw new CommandError(cmd, "payload", "must be an object");
  return p as Record<string, unknown>;
}

/** Runs a model check, turning its VmFieldError into the CommandError of `cmd`. */
export function checked<T>(cmd: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof VmFieldError) throw new CommandError(cmd, err.field, err.reason);
    throw err;
  }
}

export function posInt(cmd: string, field: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) throw new CommandError(cmd, field, "must be a positive integer");
  return v;
}
