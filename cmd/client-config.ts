// Where the CLI finds its server and credentials: flags first (--server, --token, --ca-file),
// then the environment (TRIVET_SERVER, TRIVET_TOKEN, TRIVET_CA_FILE), then the config file
// written by `trivet login` ($XDG_CONFIG_HOME/trivet/config.json or ~/.config/trivet/config.json,
// mode 0600). Also how results are printed: tables by default, `--output json`.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { ApiClient } from "../core/api/client.ts";
import { UsageError, type Command, type CommandContext } from "./commands.ts";
import { parseFlags, type FlagSpec } from "./flags.ts";

export interface ClientConfig {
  server: string;
  token?: string;
  /** The cluster CA (PEM) that the server's certificate must chain to. */
  caPem?: string;
}

export const clientFlags = {
  server: { type: "string" },
  token: { type: "string" },
  "ca-file": { type: "string" },
  config: { type: "string" },
  output: { type: "string", default: "table" },
  linearizable: { type: "boolean" },
} as const;

export function configPath(explicit?: string): string {
  if (explicit) return explicit;
  const base = process.env.XDG_CONFIG_HOME || path.join(os.homedir(), ".config");
  return path.join(base, "trivet", "config.json");
}

export function readClientConfig(file: string): Partial<ClientConfig> {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as Partial<ClientConfig>;
  } catch {
    return {};
  }
}

export function writeClientConfig(file: string, c: ClientConfig): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.writeFileSync(file, `${JSON.stringify(c, null, 2)}\n`, { mode: 0o600 });
}

export interface ClientFlagValues {
  server?: string;
  token?: string;
  "ca-file"?: string;
  config?: string;
  output: string;
  linearizable: boolean;
}

export function outputMode(v: string): "table" | "json" {
  if (v !== "table" && v !== "json") throw new UsageError(`--output must be "table" or "json" (got ${JSON.stringify(v)})`);
  return v;
}

/** Resolves the server, token and CA from flags, environment and config file, and connects. */
export function connect(f: ClientFlagValues, opts: { needToken?: boolean; callTimeoutMs?: number } = {}): ApiClient {
  const file = readClientConfig(configPath(f.config));
  const server = f.server ?? process.env.TRIVET_SERVER ?? file.server;
  if (!server) throw new UsageError("no server: pass --server HOST:PORT, set TRIVET_SERVER, or run 'trivet login' first");
  const token = f.token ?? process.env.TRIVET_TOKEN ?? file.token;
  if (opts.needToken !== false && !token) throw new UsageError("not logged in: run 'trivet login --server HOST:PORT --user NAME', or pass --token");
  const caFile = f["ca-file"] ?? process.env.TRIVET_CA_FILE;
  const caPem = caFile ? fs.readFileSync(caFile, "utf8") : file.caPem;
  if (!caPem) throw new UsageError("no cluster CA to verify the server with: pass --ca-file (e.g. <data-dir>/tls/ca.crt), or log in with --ca-file or --ca-fingerprint");
  return new ApiClient(server, grpc.credentials.createSsl(Buffer.from(caPem)), { token, linearizable: f.linearizable, callTimeoutMs: opts.callTimeoutMs });
}

/** Prints rows as an aligned table, or the raw value as JSON. */
export function printResult(out: NodeJS.WritableStream, mode: "table" | "json", json: unknown, rows: Array<Record<string, string | number | boolean>>): void {
  if (mode === "json") {
    out.write(`${JSON.stringify(json, (_k, v: unknown) => (typeof v === "bigint" ? Number(v) : v), 2)}\n`);
    return;
  }
  if (rows.length === 0) {
    out.write("(none)\n");
    return;
  }
  const cols = Object.keys(rows[0]!);
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(width[i]!)).join("  ").trimEnd();
  out.write(`${line(cols.map((c) => c.toUpperCase()))}\n`);
  for (const r of rows) out.write(`${line(cols.map((c) => String(r[c])))}\n`);
}

/** Parses flags, connects, runs `fn`, closes: the shape every API sub-command shares. */
export function apiCommand<S extends FlagSpec>(path: string[], summary: string, usage: string, extra: S,
  fn: (c: ApiClient, f: ClientFlagValues & Record<string, unknown>, positional: string[], ctx: CommandContext, mode: "table" | "json") => Promise<void>): Command {
  return {
    path, summary, usage,
    async run(ctx) {
      const { flags, positional } = parseFlags(ctx.argv, { ...clientFlags, ...extra });
      const f = flags as unknown as ClientFlagValues & Record<string, unknown>;
      const mode = outputMode(f.output);
      const client = connect(f);
      try {
        await fn(client, f, positional, ctx, mode);
      } finally {
        client.close();
      }
      return 0;
    },
  };
}

