// QEMU option syntax shared by the command-line builder: "key=value,key=value" lists (a comma
// inside a value is written twice) and the typed error that names the offending spec field.

/** Linux sun_path is 108 bytes including the terminating NUL. */
export const unixSocketPathBytesMax = 107;

/** A spec QEMU would reject or misread; `field` is the spec path, e.g. "disks[1].bus". */
export class QemuConfigError extends Error {
  readonly code = "qemu-config";
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`building the QEMU command line: ${field}: ${reason}`);
    this.name = "QemuConfigError";
  }
}

function escapeValue(value: string): string {
  return value.replaceAll(",", ",,");
}

/** Formats QEMU's "a=1,b=2" option syntax; an undefined value gives a bare word (e.g. a driver name). */
export function keyValues(entries: readonly (readonly [string, string | number | undefined])[]): string {
  return entries.map(([key, value]) => (value === undefined ? escapeValue(key) : `${key}=${escapeValue(String(value))}`)).join(",");
}

/** An absolute path with nothing QEMU or a log line could misread. */
export function checkPath(field: string, path: string): void {
  if (!path.startsWith("/")) throw new QemuConfigError(field, `"${path}" is not an absolute path`);
  if (/[\n\0]/.test(path)) throw new QemuConfigError(field, "contains a newline or NUL byte");
}

export function checkSocketPath(field: string, path: string): void {
  checkPath(field, path);
  const bytes = Buffer.byteLength(path);
  if (bytes > unixSocketPathBytesMax) {
    throw new QemuConfigError(field, `${bytes} bytes is longer than a unix socket path may be (${unixSocketPathBytesMax}); use a shorter run directory`);
  }
}

/** Reads back what keyValues wrote: "a=1,b=x,,y" → [["a","1"],["b","x,y"]]; a bare word has an undefined value. */
export function parseKeyValues(text: string): [string, string | undefined][] {
  const entries: [string, string | undefined][] = [];
  let current = "";
  const end = (): void => {
    const eq = current.indexOf("=");
    entries.push(eq < 0 ? [current, undefined] : [current.slice(0, eq), current.slice(eq + 1)]);
    current = "";
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch !== ",") current += ch;
    else if (text[i + 1] === ",") {
      current += ",";
      i++;
    } else end();
  }
  if (text !== "") end();
  return entries;
}
