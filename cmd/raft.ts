// `trivet raft serve`: runs one node of a static Raft group with the key/value service — the
// process the three-process tests and `npm run bench:raft` start. `trivet serve` (cluster
// issue) supersedes it with bootstrap, join and mutual TLS; until then this is the way to run
// the replicated state on its own.
import * as grpc from "@grpc/grpc-js";
import { listenGrpc } from "../core/api/grpc-listen.ts";
import { kvServiceDefinition, kvServiceHandlers } from "../core/api/kv-service.ts";
import { jsonLogger, parseLogLevel } from "../core/log.ts";
import { GrpcTransport } from "../core/raft/driver/grpc-transport.ts";
import { Replica } from "../core/state/replica.ts";
import { UsageError, type Command, untilStopSignal } from "./commands.ts";
import { parseFlags } from "./flags.ts";

const spec = {
  id: { type: "string", required: true },
  "data-dir": { type: "string", required: true },
  raft: { type: "string", required: true },
  api: { type: "string", required: true },
  members: { type: "string", required: true },
  "tick-ms": { type: "string", default: "50" },
  "election-ticks": { type: "string", default: "10" },
  "log-level": { type: "string", default: "info" },
} as const;

/** Parses "1=127.0.0.1:7001,2=127.0.0.1:7002" into ids and addresses. */
export function parseMembers(v: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const part of v.split(",").filter(Boolean)) {
    const m = /^(\d+)=([^=,\s]+:\d{1,5})$/.exec(part.trim());
    if (!m) throw new UsageError(`--members: "${part}" is not id=host:port`);
    const id = Number(m[1]);
    if (id < 1 || out.has(id)) throw new UsageError(`--members: node id ${m[1]} is ${id < 1 ? "not positive" : "listed twice"}`);
    out.set(id, m[2]!);
  }
  if (out.size === 0) throw new UsageError("--members: at least one member is needed");
  return out;
}

function positiveInt(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`--${name} must be a positive integer (got ${JSON.stringify(v)})`);
  return n;
}

export const raftServeCommand: Command = {
  path: ["raft", "serve"],
  summary: "run one node of a static Raft group with its key/value service, without TLS (tests and benchmarks only)",
  hidden: true,
  usage: "--id N --data-dir DIR --raft HOST:PORT --api HOST:PORT --members 1=HOST:PORT,2=...",
  async run(ctx) {
    const { flags } = parseFlags(ctx.argv, spec);
    const id = positiveInt("id", flags.id);
    const members = parseMembers(flags.members);
    if (!members.has(id)) throw new UsageError(`--members must include this node (--id ${id})`);
    const log = jsonLogger(ctx.stderr, parseLogLevel(flags["log-level"]), { node: id });
    const transport = new GrpcTransport({ id, listen: flags.raft });
    const replica = await Replica.open({
      id, dataDir: flags["data-dir"], transport, initialMembers: members, logger: log,
      host: { tickMs: positiveInt("tick-ms", flags["tick-ms"]), electionTicks: positiveInt("election-ticks", flags["election-ticks"]) },
    });
    const server = new grpc.Server({ "grpc.max_receive_message_length": 4 * 1024 * 1024 });
    server.addService(kvServiceDefinition, kvServiceHandlers(replica));
    const apiPort = await listenGrpc(server, flags.api, grpc.ServerCredentials.createInsecure());
    log.info("node ready", { raft: flags.raft, api: `${flags.api.replace(/:\d+$/, "")}:${apiPort}`, dataDir: flags["data-dir"] });
    await untilStopSignal();
    log.info("shutting down");
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    await replica.close();
    return 0;
  },
};
