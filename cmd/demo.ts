// `trivet demo`: a local three-node cluster on loopback addresses (127.0.0.11–13, default
// ports) in one command — init, two joins, three `trivet serve` processes — printing every
// node's web address and the administrator's credentials, and stopping them all on Ctrl-C or
// SIGTERM. Rerun with the same --data-dir and it starts the existing cluster again.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { ApiClient } from "../core/api/client.ts";
import { AuthService, CredentialKind } from "../core/api/gen/trivet/v1/auth_pb.ts";
import { ClusterService, NodeRole } from "../core/api/gen/trivet/v1/cluster_pb.ts";
import { dataLayout, isInitialized, readNodeConfig } from "../core/cluster/node-config.ts";
import { initCluster, joinCluster } from "../core/cluster/setup.ts";
import { jsonLogger } from "../core/log.ts";
import { untilStopSignal, type Command } from "./commands.ts";
import { parseFlags } from "./flags.ts";

const nodeCount = 3;
const readyTimeoutMs = 60_000;
const stopTimeoutMs = 10_000;

const addressOf = (i: number) => `127.0.0.${11 + i}`;
const endpointsOf = (i: number, ports: { api: number; peer: number; http: number }) => ({
  apiAddress: `${addressOf(i)}:${ports.api}`, peerAddress: `${addressOf(i)}:${ports.peer}`, httpAddress: `${addressOf(i)}:${ports.http}`,
});

/** How to run this same program again with other arguments (single executable, or node + script). */
export function selfCommand(args: string[]): [string, string[]] {
  const isSea = (() => {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      return (require("node:sea") as { isSea(): boolean }).isSea();
    } catch {
      return false;
    }
  })();
  return isSea ? [process.execPath, args] : [process.execPath, [...process.execArgv, process.argv[1]!, ...args]];
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await sleep(200);
  }
  throw new Error(`demo: ${what} within ${timeoutMs} ms${last ? `: ${String(last)}` : ""}`);
}

export const demoCommand: Command = {
  path: ["demo"],
  summary: "start a local three-node demo cluster on 127.0.0.11-13 (Ctrl-C stops it)",
  usage: "[--data-dir DIR] [--api-port 7443 --peer-port 7444 --http-port 8006]",
  async run(ctx) {
    const { flags } = parseFlags(ctx.argv, {
      "data-dir": { type: "string" }, "api-port": { type: "string", default: "7443" }, "peer-port": { type: "string", default: "7444" }, "http-port": { type: "string", default: "8006" },
    });
    const t0 = Date.now();
    const root = flags["data-dir"] ?? fs.mkdtempSync(path.join(os.tmpdir(), "trivet-demo-"));
    const ports = { api: Number(flags["api-port"]), peer: Number(flags["peer-port"]), http: Number(flags["http-port"]) };
    const dirs = Array.from({ length: nodeCount }, (_, i) => path.join(root, `node${i + 1}`));
    const log = jsonLogger(ctx.stderr, "warn");
    const children: ChildProcess[] = [];
    const stopAll = async () => {
      await Promise.all(children.map(async (c) => {
        if (c.exitCode !== null || c.signalCode !== null) return;
        const gone = new Promise((r) => c.once("exit", r));
        c.kill("SIGTERM");
        const t = setTimeout(() => c.kill("SIGKILL"), stopTimeoutMs);
        await gone;
        clearTimeout(t);
      }));
    };
    const serve = (i: number) => {
      const [cmd, args] = selfCommand(["serve", "--data-dir", dirs[i]!, "--log-level", "warn"]);
      const out = fs.openSync(path.join(root, `node${i + 1}.log`), "a");
      const child = spawn(cmd, args, { stdio: ["ignore", out, out] });
      fs.closeSync(out);
      children.push(child);
    };
    const credsFile = path.join(root, "admin-password");
    try {
      let password: string;
      if (!isInitialized(dirs[0]!)) {
        password = randomBytes(12).toString("base64url");
        fs.mkdirSync(root, { recursive: true });
        fs.writeFileSync(credsFile, `${password}\n`, { mode: 0o600 });
        await initCluster({ dataDir: dirs[0]!, clusterName: "demo", nodeName: "node1", adminUser: "admin", adminPassword: password, logger: log, ...endpointsOf(0, ports) });
      } else {
        password = fs.readFileSync(credsFile, "utf8").trim();
      }
      serve(0);
      const caPem = fs.readFileSync(dataLayout(dirs[0]!).caCert, "utf8");
      const first = readNodeConfig(dirs[0]!);
      const anon = new ApiClient(first.apiAddress, grpc.credentials.createSsl(Buffer.from(caPem)));
      const login = await until("node1 answering", () => anon.call(AuthService, "login", { username: "admin", password, kind: CredentialKind.TOKEN, tokenName: "demo" }), readyTimeoutMs);
      anon.close();
      const admin = new ApiClient(first.apiAddress, grpc.credentials.createSsl(Buffer.from(caPem)), { token: login.apiToken });
      for (let i = 1; i < nodeCount; i++) {
        if (!isInitialized(dirs[i]!)) {
          const { token } = await admin.call(ClusterService, "createJoinToken", { ttlSeconds: 600 });
          await joinCluster({ dataDir: dirs[i]!, token, nodeName: `node${i + 1}`, logger: log, ...endpointsOf(i, ports) });
        }
        serve(i);
      }
      await until("three voters", async () => {
        const s = await admin.call(ClusterService, "getStatus", {});
        return s.nodes.filter((n) => n.role === NodeRole.VOTER).length === nodeCount && s.leaderId > 0n ? s : undefined;
      }, readyTimeoutMs);
      admin.close();
      ctx.stdout.write(`Trivet demo cluster "demo" is up (${((Date.now() - t0) / 1000).toFixed(1)} s), data in ${root}\n`);
      for (let i = 0; i < nodeCount; i++) ctx.stdout.write(`  node${i + 1}: https://${endpointsOf(i, ports).httpAddress}  (gRPC ${endpointsOf(i, ports).apiAddress})\n`);
      ctx.stdout.write(`  user: admin  password: ${password}\n  CA: ${dataLayout(dirs[0]!).caCert}\n  CLI: trivet login --server ${first.apiAddress} --user admin --ca-file ${dataLayout(dirs[0]!).caCert}\nPress Ctrl-C to stop.\n`);
      await untilStopSignal();
      ctx.stdout.write("stopping the demo cluster…\n");
      return 0;
    } finally {
      await stopAll();
    }
  },
};
