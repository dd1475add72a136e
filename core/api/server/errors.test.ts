// The error model: every code maps to one gRPC and one HTTP status, and errors of the layers
// below translate to the code a caller can act on.
import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { HostError } from "../../raft/driver/raft-host.ts";
import { CommandError } from "../../state/errors.ts";
import { ApiError, apiCodeOfGrpcStatus, checkResult, grpcStatusOf, httpStatusOf, toApiError, type ApiErrorCode } from "./errors.ts";

describe("API errors", () => {
  it("maps each code to distinct statuses and back from gRPC", () => {
    const codes = Object.keys(httpStatusOf) as ApiErrorCode[];
    expect(new Set(codes.map((c) => httpStatusOf[c])).size).toBe(codes.length);
    for (const c of codes) expect(apiCodeOfGrpcStatus(grpcStatusOf[c])).toBe(c);
    expect(grpcStatusOf.failed_precondition).toBe(status.FAILED_PRECONDITION);
    expect(httpStatusOf.resource_exhausted).toBe(429);
  });

  it("translates command validation, command results and driver errors", () => {
    expect(toApiError(new CommandError("user.create", "username", "must not be empty"))).toMatchObject({ code: "invalid_argument", field: "username" });
    expect(toApiError(new HostError("no_leader", "no leader"))).toMatchObject({ code: "unavailable", reason: "no_leader" });
    expect(toApiError(new TypeError("boom"))).toMatchObject({ code: "internal", message: "internal error (see the node's log)" });
    expect(() => checkResult({ ok: false, code: "already_exists", message: 'user "a" already exists', field: "username" }, "creating user a"))
      .toThrow(expect.objectContaining({ code: "already_exists", field: "username", message: 'creating user a: user "a" already exists' }) as Error);
    expect(() => checkResult({ ok: false, code: "something_new", message: "m" }, "x")).toThrow(ApiError);
    expect(checkResult({ ok: true, id: "u" }, "x")).toEqual({ ok: true, id: "u" });
  });
});
