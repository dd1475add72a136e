// `trivet vm console NAME`: attaches this terminal to a VM's serial console over the gRPC
// ConsoleService stream. The terminal is put in raw mode so keys (Ctrl-C included) go to the
// guest; Ctrl-] detaches and leaves the VM running, as with virsh and telnet.
import fs from "node:fs";
import type { Readable } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { openConsole } from "../core/api/console/grpc-client.ts";
import { UsageError, type Command } from "./commands.ts";
import { clientFlags, configPath, readClientConfig } from "./client-config.ts";
import { parseFlags } from "./flags.ts";

/** Ctrl-] (GS), the detach key. */
export const detachByte = 0x1d;

export interface ConsoleSessionOptions {
  client: grpc.Client;
  vm: string;
  token?: string;
  input: Readable;
  output: { write(data: Uint8Array): unknown };
}

/** Pipes input to the console and the console to output until Ctrl-] or the server ends it. */
export async function consoleSession(o: ConsoleSessionOptions): Promise<"detached" | "ended"> {
  let detached = false;
  const stream = openConsole(o.client, o.vm, { token: o.token, onData: (d) => o.output.write(d) });
  const onInput = (chunk: Buffer) => {
    const at = chunk.indexOf(detachByte);
    const keys = at < 0 ? chunk : chunk.subarray(0, at);
    if (keys.length > 0 && !stream.write(keys)) o.input.pause();
    if (at >= 0) {
      detached = true;
      stream.close();
    }
  };
  stream.onDrain(() => o.input.resume());
  o.input.on("data", onInput);
  try {
    await stream.done;
  } finally {
    o.input.off("data", onInput);
    o.input.pause();
  }
  return detached ? "detached" : "ended";
}

export const vmConsoleCommand: Command = {
  path: ["vm", "console"],
  summary: "attach this terminal to a VM's serial console (Ctrl-] detaches)",
  usage: "NAME [--server HOST:PORT] [--token TOKEN] [--ca-file FILE]",
  async run(ctx) {
    const { flags, positional } = parseFlags(ctx.argv, clientFlags);
    if (positional.length !== 1) throw new UsageError("give exactly one VM name");
    const file = readClientConfig(configPath(flags.config));
    const server = flags.server ?? process.env.TRIVET_SERVER ?? file.server;
    if (!server) throw new UsageError("no server: pass --server HOST:PORT, set TRIVET_SERVER, or run 'trivet login' first");
    const token = flags.token ?? process.env.TRIVET_TOKEN ?? file.token;
    if (!token) throw new UsageError("not logged in: run 'trivet login --server HOST:PORT --user NAME', or pass --token");
    const caFile = flags["ca-file"] ?? process.env.TRIVET_CA_FILE;
    const caPem = caFile ? fs.readFileSync(caFile, "utf8") : file.caPem;
    if (!caPem) throw new UsageError("no cluster CA to verify the server with: pass --ca-file, or log in with --ca-file or --ca-fingerprint");
    const client = new grpc.Client(server, grpc.credentials.createSsl(Buffer.from(caPem)));
    const stdin = process.stdin;
    const raw = stdin.isTTY;
    ctx.stderr.write(`connected to the serial console of ${positional[0]}; press Ctrl-] to detach\r\n`);
    if (raw) stdin.setRawMode(true);
    try {
      const how = await consoleSession({ client, vm: positional[0]!, token, input: stdin, output: ctx.stdout });
      ctx.stderr.write(how === "detached" ? "\r\ndetached (the VM keeps running)\r\n" : "\r\nthe console was closed by the server\r\n");
    } finally {
      if (raw) stdin.setRawMode(false);
      client.close();
    }
    return 0;
  },
};
