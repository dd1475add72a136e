// Field rules for validating requests at the edge. The generated schemas already guarantee
// types (a string is a string); these rules add what proto cannot say: lengths, character sets,
// known enum values, ranges. A failed rule throws ApiError invalid_argument naming the field
// (its name in the .proto file, dotted for nested fields) and the reason, before any handler runs.
import { ApiError } from "./errors.ts";

/** Returns the reason a value is wrong, or undefined when it is fine. */
export type Rule<T> = (value: T) => string | undefined;

export function invalid(field: string, reason: string): ApiError {
  return new ApiError("invalid_argument", `field "${field}": ${reason}`, { field, reason: "invalid_field" });
}

/** Applies one rule to one field; throws naming the field. */
export function check<T>(field: string, value: T, ...rules: Rule<T>[]): void {
  for (const rule of rules) {
    const reason = rule(value);
    if (reason !== undefined) throw invalid(field, reason);
  }
}

/** A string matching `pattern`, with `description` saying what that means to a person. */
export function matches(pattern: RegExp, description: string): Rule<string> {
  return (v) => (pattern.test(v) ? undefined : `${description} (got ${JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v)})`);
}

export function lengthBetween(minChars: number, maxChars: number): Rule<string> {
  return (v) => {
    const n = [...v].length;
    return n >= minChars && n <= maxChars ? undefined : `must be ${minChars}–${maxChars} characters (got ${n})`;
  };
}

export function intBetween(min: number, max: number): Rule<number> {
  return (v) => (Number.isInteger(v) && v >= min && v <= max ? undefined : `must be an integer from ${min} to ${max} (got ${v})`);
}

/** One of the named values of an enum (proto3 enums are open: unknown numbers decode fine). */
export function oneOf<T extends number>(names: ReadonlyMap<T, string>, what: string): Rule<T> {
  return (v) => (names.has(v) ? undefined : `must be one of ${[...names.values()].join(", ")} (got ${what} ${v})`);
}

/** For a method whose request has nothing to check beyond its types. */
export function noFields(): void {}

// Shared field shapes of the API.
export const usernameMaxChars = 64;
export const usernameRule = matches(/^[a-z0-9._-]{1,64}$/, `must be 1–${usernameMaxChars} characters of a-z, 0-9, ., _, -`);
export const objectKindRule = matches(/^[a-z][a-z0-9_]{0,31}$/, "must be an object kind of 1–32 characters of a-z, 0-9, _ (vm, node, volume…)");
export const objectIdRule = matches(/^(\*|[A-Za-z0-9][A-Za-z0-9._-]{0,127})$/, "must be \"*\" or an object name of 1–128 characters of A-Z, a-z, 0-9, ., _, -");
