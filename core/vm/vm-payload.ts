// Payload checks shared by the VM state commands: each failure is a CommandError naming the
// command and field.
import { CommandError } from "../state/errors.ts";
import { checkedPayload, payloadFields } from "../state/payload.ts";
import { VmFieldError } from "./vm-model.ts";

export const fields = payloadFields;

/** Runs a model check, turning its VmFieldError into the CommandError of `cmd`. */
export function checked<T>(cmd: string, fn: () => T): T {
  return checkedPayload(cmd, VmFieldError, fn);
}

export function posInt(cmd: string, field: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) throw new CommandError(cmd, field, "must be a positive integer");
  return v;
}
