// Byte sizes on the command line: "10G", "512M", "1T", "1.5G", "4096" (binary units: K = 1024),
// parsed to a whole number of bytes, and printed back the same way for tables.
import { UsageError } from "./commands.ts";

const unitPowers: Record<string, number> = { "": 0, K: 1, M: 2, G: 3, T: 4, P: 5 };

/** Parses a size with an optional binary suffix (K, M, G, T, P; "KiB", "GB" and "G" all mean 1024-based). */
export function parseSize(flag: string, text: string): bigint {
  const m = /^(\d+)(?:\.(\d+))?\s*([KMGTP]?)(?:i?B)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`--${flag} must be a size such as 10G, 512M, 1T or a number of bytes (got ${JSON.stringify(text)})`);
  const scale = 1024n ** BigInt(unitPowers[m[3]!.toUpperCase()]!);
  const fraction = m[2] ?? "";
  const denominator = 10n ** BigInt(fraction.length);
  const scaled = (BigInt(m[1]!) * denominator + BigInt(fraction || "0")) * scale;
  if (scaled % denominator !== 0n) throw new UsageError(`--${flag} ${text} is not a whole number of bytes`);
  return scaled / denominator;
}

/** "10 GiB", "1.5 GiB", "512 B": the largest binary unit with at most one decimal. */
export function formatBytes(bytes: bigint | number): string {
  let n = Number(bytes);
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let u = 0;
  while (n >= 1024 && u < units.length - 1) {
    n /= 1024;
    u++;
  }
  const text = u === 0 || Number.isInteger(n) ? String(n) : n.toFixed(1).replace(/\.0$/, "");
  return `${text} ${units[u]}`;
}
