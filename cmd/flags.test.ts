import { describe, expect, it } from "vitest";
import { UsageError } from "./commands.ts";
import { parseFlags } from "./flags.ts";

const spec = { id: { type: "string", required: true }, listen: { type: "string", default: "127.0.0.1:7443" }, json: { type: "boolean" }, name: { type: "string" } } as const;

describe("parseFlags", () => {
  it("reads --name value, --name=value, booleans, defaults and positionals", () => {
    const { flags, positional } = parseFlags(["--id", "3", "pos", "--json", "--name=web1"], spec);
    expect(flags).toEqual({ id: "3", listen: "127.0.0.1:7443", json: true, name: "web1" });
    expect(positional).toEqual(["pos"]);
  });

  it("names the flag in every usage error", () => {
    expect(() => parseFlags(["--id", "1", "--bogus"], spec)).toThrow(new UsageError("unknown flag --bogus"));
    expect(() => parseFlags([], spec)).toThrow(new UsageError("missing required flag --id"));
    expect(() => parseFlags(["--id"], spec)).toThrow(new UsageError("flag --id needs a value"));
    expect(() => parseFlags(["--id", "--json"], spec)).toThrow(new UsageError("flag --id needs a value"));
    expect(() => parseFlags(["--id", "1", "--json=yes"], spec)).toThrow(new UsageError("flag --json takes no value"));
  });
});
