// The error model of the API: one ApiError with a stable code, a message that says what was
// being done, and optionally the offending field and a machine-readable reason. Each code maps
// to one gRPC status (with trailers trivet-error-field / trivet-error-reason) and one HTTP status
// (with the JSON body {"error": {code, message, field, reason}}). Errors of the layers below
// (command validation, command results, the Raft driver) are translated here, in one place.
import { status as GrpcStatus } from "@grpc/grpc-js";
import { HostError } from "../../raft/driver/raft-host.ts";
import type { CommandResult } from "../../state/apply.ts";
import { CommandError } from "../../state/errors.ts";

export type ApiErrorCode =
  | "invalid_argument" | "unauthenticated" | "permission_denied" | "not_found" | "already_exists"
  | "failed_precondition" | "resource_exhausted" | "unavailable" | "internal";

export interface ApiErrorOptions {
  field?: string;
  reason?: string;
  /** For resource_exhausted: when to try again. */
  retryAfterMs?: number;
  cause?: unknown;
}

export class ApiError extends Error {
  readonly field?: string;
  readonly reason?: string;
  readonly retryAfterMs?: number;

  constructor(readonly code: ApiErrorCode, message: string, options: ApiErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = "ApiError";
    this.field = options.field;
    this.reason = options.reason;
    this.retryAfterMs = options.retryAfterMs;
  }

  toJSON(): { code: ApiErrorCode; message: string; field?: string; reason?: string } {
    return { code: this.code, message: this.message, field: this.field, reason: this.reason };
  }
}

export const grpcStatusOf: Record<ApiErrorCode, GrpcStatus> = {
  invalid_argument: GrpcStatus.INVALID_ARGUMENT,
  unauthenticated: GrpcStatus.UNAUTHENTICATED,
  permission_denied: GrpcStatus.PERMISSION_DENIED,
  not_found: GrpcStatus.NOT_FOUND,
  already_exists: GrpcStatus.ALREADY_EXISTS,
  failed_precondition: GrpcStatus.FAILED_PRECONDITION,
  resource_exhausted: GrpcStatus.RESOURCE_EXHAUSTED,
  unavailable: GrpcStatus.UNAVAILABLE,
  internal: GrpcStatus.INTERNAL,
};

export const httpStatusOf: Record<ApiErrorCode, 400 | 401 | 403 | 404 | 409 | 412 | 429 | 500 | 503> = {
  invalid_argument: 400,
  unauthenticated: 401,
  permission_denied: 403,
  not_found: 404,
  already_exists: 409,
  failed_precondition: 412,
  resource_exhausted: 429,
  unavailable: 503,
  internal: 500,
};

const codeOfGrpcStatus = new Map<number, ApiErrorCode>(Object.entries(grpcStatusOf).map(([c, s]) => [s, c as ApiErrorCode]));

/** The API code of a gRPC status (for clients); unknown statuses are internal. */
export function apiCodeOfGrpcStatus(s: number): ApiErrorCode {
  return codeOfGrpcStatus.get(s) ?? "internal";
}

/** Failure codes of command results (CommandResult.code) and what they mean to a caller. */
const resultCodes: Record<string, ApiErrorCode> = {
  not_found: "not_found",
  already_exists: "already_exists",
  name_taken: "already_exists",
  version_mismatch: "failed_precondition",
  failed_precondition: "failed_precondition",
  permission_denied: "permission_denied",
  request_too_old: "failed_precondition",
  invalid_argument: "invalid_argument",
};

/** Throws the ApiError of a failed command result; returns the result when it succeeded. */
export function checkResult<R extends CommandResult>(result: R, doing: string): Extract<R, { ok: true }> {
  if (result.ok) return result as Extract<R, { ok: true }>;
  const code = resultCodes[result.code] ?? "failed_precondition";
  throw new ApiError(code, `${doing}: ${result.message}`, { field: result.field, reason: result.code });
}

const hostCodes: Record<HostError["code"], ApiErrorCode> = {
  busy: "resource_exhausted",
  timeout: "unavailable",
  stopped: "unavailable",
  no_leader: "unavailable",
  rejected: "failed_precondition",
};

/** Any error thrown by a handler or the layers below, as an ApiError (unknown ones are internal). */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof CommandError) {
    return new ApiError("invalid_argument", `field "${err.field}": ${err.reason}`, { field: err.field, reason: "invalid_command", cause: err });
  }
  if (err instanceof HostError) return new ApiError(hostCodes[err.code], err.message, { reason: err.code, cause: err });
  return new ApiError("internal", "internal error (see the node's log)", { cause: err });
}
