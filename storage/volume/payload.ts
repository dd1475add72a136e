// Payload and result helpers shared by the storage state commands (storage-module.ts,
// storage-writer.ts): each bad field becomes a CommandError naming the command and the field,
// and each refusal a deterministic failure result naming the field.
import type { CommandResult } from "../../core/state/apply.ts";
import type { ApplyContext } from "../../core/state/modules.ts";
import { checkedPayload, payloadFields } from "../../core/state/payload.ts";
import { StorageFieldError, type ImageRecord } from "./model.ts";
import { getImage } from "./storage-queries.ts";

export type Failure = Extract<CommandResult, { ok: false }>;

export const fields = payloadFields;

/** Runs the model checks of a payload, turning a StorageFieldError into the CommandError of `cmd`. */
export function checked<T>(cmd: string, fn: () => T): T {
  return checkedPayload(cmd, StorageFieldError, fn);
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
