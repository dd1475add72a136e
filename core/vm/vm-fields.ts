// Primitive checks of VM spec fields shared by the VM model and its device checks: each failure
// is a VmFieldError naming the field's path in the spec and the reason.

/** A field that is wrong: `field` is its path in the VM spec, e.g. "nics[0].mac". */
export class VmFieldError extends Error {
  readonly code = "vm_invalid";
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`VM field "${field}": ${reason}`);
    this.name = "VmFieldError";
  }
}

export const pathCharsMax = 1024;

export function fail(field: string, reason: string): never {
  throw new VmFieldError(field, reason);
}

export function obj(field: string, v: unknown): Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) fail(field, "must be an object");
  return v as Record<string, unknown>;
}

export function int(field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) fail(field, `must be an integer from ${min} to ${max} (got ${JSON.stringify(v)})`);
  return v;
}

export function str(field: string, v: unknown, maxChars: number): string {
  if (typeof v !== "string" || v.length > maxChars || /[\n\r\0]/.test(v)) fail(field, `must be a single-line string of at most ${maxChars} characters`);
  return v;
}

export function absPath(field: string, v: unknown): string {
  const s = str(field, v, pathCharsMax);
  if (!s.startsWith("/")) fail(field, `must be an absolute path (got ${JSON.stringify(s)})`);
  return s;
}

/** Absent, null and "" all mean "not given". */
export function absent(v: unknown): boolean {
  return v === undefined || v === null || v === "";
}
