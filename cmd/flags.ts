// A small command-line flag parser for sub-commands: `--name value`, `--name=value`, boolean
// `--flag`, with a declared spec so unknown flags and missing values are usage errors that name
// the flag.
import { UsageError } from "./commands.ts";

export type FlagSpec = Record<string, { type: "string" | "boolean"; required?: boolean; default?: string }>;

export type ParsedFlags<S extends FlagSpec> = {
  [K in keyof S]: S[K]["type"] extends "boolean" ? boolean : S[K]["required"] extends true ? string : S[K]["default"] extends string ? string : string | undefined;
};

export function parseFlags<S extends FlagSpec>(argv: readonly string[], spec: S): { flags: ParsedFlags<S>; positional: string[] } {
  const out: Record<string, string | boolean | undefined> = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--")) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const def = spec[name];
    if (!def) throw new UsageError(`unknown flag --${name}`);
    if (def.type === "boolean") {
      if (eq !== -1) throw new UsageError(`flag --${name} takes no value`);
      out[name] = true;
      continue;
    }
    const value = eq !== -1 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined || (eq === -1 && value.startsWith("--"))) throw new UsageError(`flag --${name} needs a value`);
    out[name] = value;
  }
  for (const [name, def] of Object.entries(spec)) {
    if (out[name] !== undefined) continue;
    if (def.type === "boolean") out[name] = false;
    else if (def.default !== undefined) out[name] = def.default;
    else if (def.required) throw new UsageError(`missing required flag --${name}`);
  }
  return { flags: out as ParsedFlags<S>, positional };
}
