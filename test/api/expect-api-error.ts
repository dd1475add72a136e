// The assertion integration tests share for a refused API call: an ApiError with the code and
// the field the user must fix.
import { expect } from "vitest";
import { ApiError } from "../../core/api/server/errors.ts";

export async function expectApiError(p: Promise<unknown>, code: string, field: string): Promise<ApiError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err, `expected ${code} naming ${field}`).toBeInstanceOf(ApiError);
  expect((err as ApiError).code).toBe(code);
  expect((err as ApiError).field).toBe(field);
  return err as ApiError;
}
