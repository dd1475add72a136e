// `trivet demo`: a local three-node cluster on loopback addresses (127.0.0.11–13 by default,
// default ports) in one command — init, two joins, three `trivet serve` processes — then the
// sample VM: a replicated volume "demo", a disk image on it and the VM "sample" booting the
// demo guest (cmd/demo-guest.ts, cmd/demo-sample.ts). It prints every node's web address, the
// administrator's credentials and how to reach the VM's console, and on Ctrl-C or SIGTERM stops
// the VM and then the daemons (a daemon that stops leaves its guests running, by design). Rerun
// with the same --data-dir and it starts the existing cluster and VM again.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { ApiClient } from "../core/api/client.ts";
import { AuthService, CredentialKind } from "../core/api/gen/trivet/v1/auth_pb.ts";
import { ClusterService, NodeRole } from "../core/api/gen/trivet/v1/cluster_pb.ts";
import { dataLayout, isInitialized, readNodeConfig } from "../core/cluster/node-config.ts";
import { initCluster, joinCluster } from "../core/cluster/setup.ts";
import { jsonLogger } from "../core/log.ts";
import type { Logger } from "../core/raft/types.ts";
import { UsageError, type Command, type CommandContext } from "./commands.ts";
import { descendants, killLeftovers, processTable } from "./demo-cleanup.ts";
import { ensureDemoGuest, type GuestFiles } from "./demo-guest.ts";
import { ensureSampleVm, sample, startSampleVm, stopSampleVm, type Clock } from "./demo-sample.ts";
import { parseFlags } from "./flags.ts";

const nodeCount = 3;
const readyTimeoutMs = 60_000;
const stopTimeoutMs = 10_000;
const pollMs = 200;

interface Ports {
  api: number;
  peer: number;
  http: number;
}

/** Node i's address: the last octet of `first` plus i (127.0.0.11, .12, .13 by default). */
export function addressOf(first: string, i: number): string {
  const parts = first.split(".").map(Number);
  if (!net.isIPv4(first) || parts[3]! + nodeCount - 1 > 254) throw new UsageError(`--first-address must be an IPv4 address whose last part leaves room for ${nodeCount} nodes (got ${JSON.stringify(first)})`);
  return [...parts.slice(0, 3), parts[3]! + i].join(".");
}

const endpointsOf = (first: string, i: number, ports: Ports) => ({
  apiAddress: `${addressOf(first, i)}:${ports.api}`, peerAddress: `${addressOf(first, i)}:${ports.peer}`, httpAddress: `${addressOf(first, i)}:${ports.http}`,
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

const clock: Clock = { now: () => Date.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) };

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
    await clock.sleep(pollMs);
  }
  throw new Error(`demo: ${what} within ${timeoutMs} ms${last ? `: ${String(last)}` : ""}`);
}

const stopSignals = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

/**
 * Resolves on the first SIGINT, SIGTERM or SIGHUP (a closed terminal); registered at once so a
 * signal during setup counts, and kept until the end so a second Ctrl-C does not cut the
 * orderly stop short.
 */
function stopSignal(): { stopped: Promise<"stop">; release: () => void } {
  let onSignal = () => {};
  const stopped = new Promise<"stop">((resolve) => {
    onSignal = () => resolve("stop");
    for (const s of stopSignals) process.on(s, onSignal);
  });
  return { stopped, release: () => stopSignals.forEach((s) => process.off(s, onSignal)) };
}

interface Demo {
  root: string;
  dirs: string[];
  first: string;
  ports: Ports;
  log: Logger;
  children: ChildProcess[];
}

function serve(d: Demo, i: number): void {
  const [cmd, args] = selfCommand(["serve", "--data-dir", d.dirs[i]!, "--log-level", "warn"]);
  const out = fs.openSync(path.join(d.root, `node${i + 1}.log`), "a");
  // A session of its own: a Ctrl-C in the terminal reaches the demo only, which stops the VM
  // while the daemons still form a quorum, and then the daemons.
  const child = spawn(cmd, args, { stdio: ["ignore", out, out], detached: true });
  fs.closeSync(out);
  d.children.push(child);
}

async function stopChildren(children: ChildProcess[]): Promise<void> {
  await Promise.all(children.map(async (c) => {
    if (c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once("exit", r));
    c.kill("SIGTERM");
    const t = setTimeout(() => c.kill("SIGKILL"), stopTimeoutMs);
    await gone;
    clearTimeout(t);
  }));
}

/** Creates (first start) or reopens the cluster, runs the three daemons, waits for three voters. */
async function startCluster(d: Demo): Promise<{ admin: ApiClient; password: string; apiAddress: string }> {
  const credsFile = path.join(d.root, "admin-password");
  let password: string;
  if (!isInitialized(d.dirs[0]!)) {
    password = randomBytes(12).toString("base64url");
    fs.writeFileSync(credsFile, `${password}\n`, { mode: 0o600 });
    await initCluster({ dataDir: d.dirs[0]!, clusterName: "demo", nodeName: "node1", adminUser: "admin", adminPassword: password, logger: d.log, ...endpointsOf(d.first, 0, d.ports) });
  } else {
    password = fs.readFileSync(credsFile, "utf8").trim();
  }
  // A restart needs a quorum before node1 can log anyone in: start every node already made.
  for (let i = 0; i < nodeCount; i++) if (isInitialized(d.dirs[i]!)) serve(d, i);
  const caPem = Buffer.from(fs.readFileSync(dataLayout(d.dirs[0]!).caCert, "utf8"));
  const { apiAddress } = readNodeConfig(d.dirs[0]!);
  const anon = new ApiClient(apiAddress, grpc.credentials.createSsl(caPem));
  const login = await until("node1 answering", () => anon.call(AuthService, "login", { username: "admin", password, kind: CredentialKind.TOKEN, tokenName: "demo" }), readyTimeoutMs);
  anon.close();
  const admin = new ApiClient(apiAddress, grpc.credentials.createSsl(caPem), { token: login.apiToken });
  for (let i = 1; i < nodeCount; i++) {
    if (!isInitialized(d.dirs[i]!)) {
      const { token } = await admin.call(ClusterService, "createJoinToken", { ttlSeconds: 600 });
      await joinCluster({ dataDir: d.dirs[i]!, token, nodeName: `node${i + 1}`, logger: d.log, ...endpointsOf(d.first, i, d.ports) });
      serve(d, i);
    }
  }
  await until("three voters", async () => {
    const s = await admin.call(ClusterService, "getStatus", {});
    return s.nodes.filter((n) => n.role === NodeRole.VOTER).length === nodeCount && s.leaderId > 0n ? s : undefined;
  }, readyTimeoutMs);
  return { admin, password, apiAddress };
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: Error };
const settle = <T>(p: Promise<T>): Promise<Settled<T>> => p.then((value) => ({ ok: true as const, value }), (error: unknown) => ({ ok: false as const, error: error as Error }));

/** Makes and starts the sample VM, printing its outcome; never throws (the cluster stays up). */
async function runSample(ctx: CommandContext, d: Demo, admin: ApiClient, guest: Promise<Settled<GuestFiles>>): Promise<void> {
  const ui = `https://${endpointsOf(d.first, 0, d.ports).httpAddress}/vms/${sample.vm}`;
  ctx.stdout.write(`Starting the sample VM "${sample.vm}" (building the demo guest if needed)…\n`);
  const built = await guest;
  if (!built.ok) {
    ctx.stdout.write(`Sample VM not created: ${built.error.message}\n`);
    return;
  }
  try {
    const made = await ensureSampleVm(admin, built.value, clock);
    if (made.length > 0) ctx.stdout.write(`  created ${made.join(", ")}\n`);
    const started = await startSampleVm(admin, clock);
    if (started.ok) {
      ctx.stdout.write(`Sample VM "${sample.vm}" is running on ${started.vm.nodeName} (pid ${started.vm.status?.pid}): ${sample.vcpus} vCPU, ${sample.memoryMib} MiB, ` +
        `disk ${sample.volume}/${sample.image} (${Number(sample.diskBytes) / 1024 / 1024} MiB on volume "${sample.volume}", ${sample.replicas} replicas), user-mode NIC\n`);
    } else {
      ctx.stdout.write(`Sample VM "${sample.vm}" did not start: ${started.error}\n  the cluster keeps running; try again with: trivet vm start ${sample.vm}\n`);
    }
    ctx.stdout.write(`  console: trivet vm console ${sample.vm}  (after the login line above), or the VM page ${ui}\n`);
  } catch (err) {
    ctx.stdout.write(`Sample VM not set up: ${(err as Error).message}\n`);
  }
}

/** Stops the daemons, then ends what they started and left running (see demo-cleanup.ts). */
async function stopDaemons(ctx: CommandContext, d: Demo): Promise<void> {
  const noted = descendants(d.children.flatMap((c) => (c.pid === undefined ? [] : [c.pid])), processTable());
  await stopChildren(d.children);
  const killed = killLeftovers(noted);
  if (killed.length > 0) ctx.stderr.write(`demo: ended ${killed.length} process(es) the daemons left running (pid ${killed.join(", ")})\n`);
}

function printCluster(ctx: CommandContext, d: Demo, c: { password: string; apiAddress: string }, t0: number): void {
  const ca = dataLayout(d.dirs[0]!).caCert;
  ctx.stdout.write(`Trivet demo cluster "demo" is up (${((Date.now() - t0) / 1000).toFixed(1)} s), data in ${d.root}\n`);
  for (let i = 0; i < nodeCount; i++) ctx.stdout.write(`  node${i + 1}: https://${endpointsOf(d.first, i, d.ports).httpAddress}  (gRPC ${endpointsOf(d.first, i, d.ports).apiAddress})\n`);
  ctx.stdout.write(`  user: admin  password: ${c.password}\n  CA: ${ca}\n  CLI: trivet login --server ${c.apiAddress} --user admin --ca-file ${ca}\n`);
}

export const demoCommand: Command = {
  path: ["demo"],
  summary: "start a local three-node demo cluster on 127.0.0.11-13 with a sample VM (Ctrl-C stops it)",
  usage: "[--data-dir DIR] [--first-address 127.0.0.11] [--api-port 7443 --peer-port 7444 --http-port 8006]",
  async run(ctx) {
    const { flags } = parseFlags(ctx.argv, {
      "data-dir": { type: "string" }, "first-address": { type: "string", default: "127.0.0.11" },
      "api-port": { type: "string", default: "7443" }, "peer-port": { type: "string", default: "7444" }, "http-port": { type: "string", default: "8006" },
    });
    const t0 = Date.now();
    const { stopped: stop, release } = stopSignal();
    const root = flags["data-dir"] ?? fs.mkdtempSync(path.join(os.tmpdir(), "trivet-demo-"));
    fs.mkdirSync(root, { recursive: true });
    const first = flags["first-address"];
    addressOf(first, 0);
    const d: Demo = {
      root, first, log: jsonLogger(ctx.stderr, "warn"), children: [],
      dirs: Array.from({ length: nodeCount }, (_, i) => path.join(root, `node${i + 1}`)),
      ports: { api: Number(flags["api-port"]), peer: Number(flags["peer-port"]), http: Number(flags["http-port"]) },
    };
    // The guest builds while the daemons start; it is awaited only once the cluster is up.
    const guestBuild = new AbortController();
    const guest = settle(ensureDemoGuest(path.join(root, "guest"), { signal: guestBuild.signal }));
    let admin: ApiClient | undefined;
    try {
      const c = await startCluster(d);
      admin = c.admin;
      printCluster(ctx, d, c, t0);
      if (await Promise.race([runSample(ctx, d, c.admin, guest), stop]) !== "stop") {
        ctx.stdout.write("Press Ctrl-C to stop.\n");
        await stop;
      }
      ctx.stdout.write("stopping the demo cluster…\n");
      await stopSampleVm(c.admin, clock).catch((err: unknown) => {
        ctx.stderr.write(`demo: stopping VM ${sample.vm}: ${(err as Error).message}\n`);
      });
      return 0;
    } finally {
      guestBuild.abort();
      admin?.close();
      await stopDaemons(ctx, d);
      release();
    }
  },
};
