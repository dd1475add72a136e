// Sub-commands of the cluster: the daemon (`serve`), setting a node up (`init`, `join`), logging
// in, and `trivet cluster status|nodes|token create|remove`.
import fs from "node:fs";
import { AuthService, CredentialKind } from "../core/api/gen/trivet/v1/auth_pb.ts";
import { ClusterService, NodeHealth, NodeRole } from "../core/api/gen/trivet/v1/cluster_pb.ts";
import { ApiClient } from "../core/api/client.ts";
import * as grpc from "@grpc/grpc-js";
import { Daemon } from "../core/cluster/daemon.ts";
import { defaultPorts } from "../core/cluster/node-config.ts";
import { initCluster, joinCluster } from "../core/cluster/setup.ts";
import { fetchPinnedCa } from "../core/cluster/tls.ts";
import { jsonLogger, parseLogLevel } from "../core/log.ts";
import { UsageError, type Command, type CommandContext, untilStopSignal } from "./commands.ts";
import { apiCommand, configPath, printResult, writeClientConfig } from "./client-config.ts";
import { parseFlags } from "./flags.ts";

export const dataDirDefault = "/var/lib/trivet";

const endpointFlags = {
  name: { type: "string", required: true },
  address: { type: "string", required: true },
  "data-dir": { type: "string", default: dataDirDefault },
  "api-port": { type: "string", default: String(defaultPorts.api) },
  "peer-port": { type: "string", default: String(defaultPorts.peer) },
  "http-port": { type: "string", default: String(defaultPorts.http) },
  "log-level": { type: "string", default: "warn" },
} as const;

function port(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new UsageError(`--${name} must be a port from 1 to 65535 (got ${JSON.stringify(v)})`);
  return n;
}

function endpoints(f: { address: string; "api-port": string; "peer-port": string; "http-port": string }) {
  if (!/^[A-Za-z0-9.:-]+$/.test(f.address) || /:\d+$/.test(f.address) && !f.address.includes("::")) {
    throw new UsageError(`--address must be this node's IP address or host name, without a port (got ${JSON.stringify(f.address)})`);
  }
  const host = f.address.includes(":") ? `[${f.address}]` : f.address;
  return {
    apiAddress: `${host}:${port("api-port", f["api-port"])}`,
    peerAddress: `${host}:${port("peer-port", f["peer-port"])}`,
    httpAddress: `${host}:${port("http-port", f["http-port"])}`,
  };
}

async function readPassword(ctx: CommandContext, f: { "admin-password"?: string; "admin-password-file"?: string }, what: string): Promise<string> {
  if (f["admin-password"]) return f["admin-password"];
  if (f["admin-password-file"]) return fs.readFileSync(f["admin-password-file"], "utf8").replace(/\r?\n$/, "");
  if (process.env.TRIVET_ADMIN_PASSWORD) return process.env.TRIVET_ADMIN_PASSWORD;
  if (!process.stdin.isTTY) throw new UsageError(`no ${what}: pass --admin-password-file FILE (or --admin-password), or run in a terminal to be asked`);
  ctx.stderr.write(`${what}: `);
  return await new Promise<string>((resolve) => {
    process.stdin.setRawMode?.(true);
    let s = "";
    const onData = (b: Buffer) => {
      for (const ch of b.toString()) {
        if (ch === "\r" || ch === "\n") {
          process.stdin.setRawMode?.(false);
          process.stdin.off("data", onData);
          process.stdin.pause();
          ctx.stderr.write("\n");
          return resolve(s);
        }
        if (ch === "\u0003") process.exit(130);
        s = ch === "\u007f" ? s.slice(0, -1) : s + ch;
      }
    };
    process.stdin.on("data", onData);
  });
}

export const serveCommand: Command = {
  path: ["serve"],
  summary: "run this node's daemon (Raft, API on gRPC and HTTPS, liveness)",
  usage: "[--data-dir DIR] [--log-level debug|info|warn|error]",
  async run(ctx) {
    const { flags } = parseFlags(ctx.argv, { "data-dir": { type: "string", default: dataDirDefault }, "log-level": { type: "string", default: "info" } });
    const log = jsonLogger(ctx.stderr, parseLogLevel(flags["log-level"]));
    const daemon = await Daemon.start({ dataDir: flags["data-dir"], logger: log });
    await untilStopSignal();
    log.info("shutting down", { node: daemon.config.name });
    await daemon.stop();
    return 0;
  },
};

export const initCommand: Command = {
  path: ["init"],
  summary: "create a new cluster with this node as its first member",
  usage: "--name NODE --address IP [--cluster-name NAME] [--admin-user admin] [--admin-password-file FILE] [--data-dir DIR] [--api-port 7443 --peer-port 7444 --http-port 8006]",
  async run(ctx) {
    const { flags } = parseFlags(ctx.argv, {
      ...endpointFlags,
      "cluster-name": { type: "string", default: "trivet" },
      "admin-user": { type: "string", default: "admin" },
      "admin-password": { type: "string" },
      "admin-password-file": { type: "string" },
    });
    const password = await readPassword(ctx, flags, `password for ${flags["admin-user"]}`);
    const log = jsonLogger(ctx.stderr, parseLogLevel(flags["log-level"]));
    const e = endpoints(flags);
    const r = await initCluster({ dataDir: flags["data-dir"], clusterName: flags["cluster-name"], nodeName: flags.name, adminUser: flags["admin-user"], adminPassword: password, logger: log, ...e });
    ctx.stdout.write(`cluster "${flags["cluster-name"]}" created; node ${flags.name} (id 1) in ${flags["data-dir"]}\nCA fingerprint: ${r.caFingerprint}\nstart it with: trivet serve --data-dir ${flags["data-dir"]}\n`);
    return 0;
  },
};

export const joinCommand: Command = {
  path: ["join"],
  summary: "join an existing cluster with a token from 'trivet cluster token create'",
  usage: "TOKEN --name NODE --address IP [--data-dir DIR] [--api-port 7443 --peer-port 7444 --http-port 8006]",
  async run(ctx) {
    const { flags, positional } = parseFlags(ctx.argv, endpointFlags);
    if (positional.length !== 1) throw new UsageError("give exactly one join token");
    const log = jsonLogger(ctx.stderr, parseLogLevel(flags["log-level"]));
    const r = await joinCluster({ dataDir: flags["data-dir"], token: positional[0]!, nodeName: flags.name, logger: log, ...endpoints(flags) });
    ctx.stdout.write(`joined cluster "${r.clusterName}" as node ${flags.name} (id ${r.nodeId}) via ${r.via}; start it with: trivet serve --data-dir ${flags["data-dir"]}\n`);
    return 0;
  },
};

export const loginCommand: Command = {
  path: ["login"],
  summary: "log in to a cluster and store an API token for the CLI",
  usage: "--server HOST:PORT --user NAME [--password-file FILE] [--ca-file FILE | --ca-fingerprint SHA256]",
  async run(ctx) {
    const { flags } = parseFlags(ctx.argv, {
      server: { type: "string", required: true }, user: { type: "string", required: true }, "password-file": { type: "string" },
      "ca-file": { type: "string" }, "ca-fingerprint": { type: "string" }, config: { type: "string" },
    });
    if (!flags["ca-file"] && !flags["ca-fingerprint"]) throw new UsageError("give --ca-file (the cluster's ca.crt) or --ca-fingerprint (printed by 'trivet init') to verify the server");
    const caPem = flags["ca-file"] ? fs.readFileSync(flags["ca-file"], "utf8") : await fetchPinnedCa(flags.server, flags["ca-fingerprint"]!);
    const password = await readPassword(ctx, { "admin-password-file": flags["password-file"] }, `password for ${flags.user}`);
    const client = new ApiClient(flags.server, grpc.credentials.createSsl(Buffer.from(caPem)));
    try {
      const r = await client.call(AuthService, "login", { username: flags.user, password, kind: CredentialKind.TOKEN, tokenName: "trivet-cli" });
      const file = configPath(flags.config);
      writeClientConfig(file, { server: flags.server, token: r.apiToken, caPem });
      ctx.stdout.write(`logged in to ${flags.server} as ${flags.user}; token stored in ${file}\n`);
    } finally {
      client.close();
    }
    return 0;
  },
};

const roleName = (r: NodeRole) => (r === NodeRole.VOTER ? "voter" : r === NodeRole.LEARNER ? "learner" : "?");
const healthName = (h: NodeHealth) => ({ [NodeHealth.HEALTHY]: "up", [NodeHealth.DEGRADED]: "degraded", [NodeHealth.UNREACHABLE]: "down", [NodeHealth.UNSPECIFIED]: "unknown" })[h];

export const clusterStatusCommand = apiCommand(["cluster", "status"],
  "show the cluster: nodes, roles, leader, last contact, Raft term and applied index, health", "[--server HOST:PORT] [--output table|json] [--linearizable]", {},
  async (client, _f, _p, ctx, mode) => {
    const s = await client.call(ClusterService, "getStatus", {});
    if (mode === "table") ctx.stdout.write(`cluster ${s.clusterName}  term ${s.term}  leader ${s.nodes.find((n) => n.leader)?.name ?? "none"}  commit ${s.commitIndex}  applied ${s.appliedIndex} (answered by ${s.nodeName})\n`);
    printResult(ctx.stdout, mode, s, s.nodes.map((n) => ({
      id: Number(n.id), name: n.name, address: n.address, role: roleName(n.role) + (n.leader ? " (leader)" : ""),
      health: healthName(n.health), "last contact": n.lastContactMs < 0n ? "never" : `${(Number(n.lastContactMs) / 1000).toFixed(1)} s`, applied: Number(n.appliedIndex),
    })));
  });

export const clusterTokenCommand = apiCommand(["cluster", "token", "create"], "create a single-use join token", "[--ttl SECONDS] [--server HOST:PORT] [--output table|json]",
  { ttl: { type: "string", default: "3600" } }, async (client, f, _p, ctx, mode) => {
    const ttl = Number(f.ttl);
    if (!Number.isInteger(ttl) || ttl < 1) throw new UsageError(`--ttl must be a positive number of seconds (got ${JSON.stringify(f.ttl)})`);
    const r = await client.call(ClusterService, "createJoinToken", { ttlSeconds: ttl });
    if (mode === "json") printResult(ctx.stdout, "json", r, []);
    else ctx.stdout.write(`${r.token}\n`);
  });

export const clusterRemoveCommand = apiCommand(["cluster", "remove"], "remove a node from the cluster", "NODE [--server HOST:PORT]", {}, async (client, _f, p, ctx) => {
  if (p.length !== 1) throw new UsageError("give the name of the node to remove");
  await client.call(ClusterService, "removeNode", { name: p[0]! });
  ctx.stdout.write(`node ${p[0]} removed\n`);
});
