// Payload and result helpers shared by the storage state commands (storage-module.ts,
// storage-writer.ts): each bad field becomes a CommandError naming the command and the field,
// and each refusal a deterministic failure result naming the field.
import type { CommandResult } from "../../core/state/apply.ts";
import { CommandError } from "../../core/state/errors.ts";
import type { ApplyContext } from "../../core/state/modules.ts";
import { StorageFieldError, type ImageRecord } from "./model.ts";
import { getImage } from "./storage-queries.ts";

export type Failure = Extract<CommandResult, { ok: false }>;

export function fields(cmd: string, p: unknown): Record<string, unknown> {
  if (p === null || typeof p !== "object" || Array.isArray(p)) throw new CommandError(cmd, "payload", "must be an object");
  return p as Record<string, unknown>;
}

/** Runs the model checks of a payload, turning a StorageFieldError into the CommandError of `cmd`. */
export function checked<T>(cmd: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof StorageFieldError) throw new CommandError(cmd, err.field, err.reason);
    throw err;
  }
}

export function failure(code: string, field: string, message: string): Failure {
  return { ok: false, code, field, message };
}

export function isFailure(v: object): v is Failure {
  return "ok" in v;
}

/** The image, or the not_found failure to return. */
export function imageOr(ctx: ApplyContext, id: string): ImageRecord | Failure {
  return getImage(ctx.db, id) ?? failure("not_found", "id", `image ${id} does not exist`);
}
