// A harness that runs a static Raft group as real OS processes on loopback (`trivet raft
// serve`, from source through tsx or from the built binary), for the three-process tests and
// the Raft benchmark. Processes are spawned with argument arrays, their stderr (JSON logs)
// kept in files, killed with SIGKILL on demand and on harness stop.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { KvClient, type KvStatus } from "../../core/api/kv-service.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const startTimeoutMs = 30_000;
const stopTimeoutMs = 10_000;

export interface ProcessNode {
  id: number;
  raftAddress: string;
  apiAddress: string;
  dataDir: string;
  logFile: string;
  proc?: ChildProcess;
  client: KvClient;
}

export interface ClusterOptions {
  size?: number;
  dir?: string;
  /** Use this executable (e.g. dist/trivet) instead of running the source through tsx. */
  binary?: string;
  tickMs?: number;
  electionTicks?: number;
  logLevel?: string;
}

/**
 * A free TCP port on 127.0.0.1 for a test daemon, chosen below the kernel's ephemeral range
 * (32768–60999 by default): a port the kernel handed out with bind(0) can be taken by any
 * process's next outgoing connection before the daemon binds it, which made test starts flaky.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < freePortAttemptsMax; attempt++) {
    const port = sliceLow + Math.floor(Math.random() * slicePorts);
    // Never the same port twice in one test process: a daemon may not have bound it yet.
    if (handedOut.has(port) || !(await bindable(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free port in ${sliceLow}-${sliceLow + slicePorts - 1} after ${freePortAttemptsMax} attempts`);
}

const testPortLow = 20_000;
const testPortHigh = 32_700;
const freePortAttemptsMax = 200;
const handedOut = new Set<number>();
/**
 * Test files run in parallel worker processes (vitest's VITEST_POOL_ID); each draws from its own
 * slice of the range, so two workers never hand out the same port between check and bind.
 */
const poolSlices = 8;
const slicePorts = Math.floor((testPortHigh - testPortLow) / poolSlices);
const sliceLow = testPortLow + (Number(process.env.VITEST_POOL_ID ?? 0) % poolSlices) * slicePorts;

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

/** Extra node flags for the node processes, e.g. TRIVET_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof". */
function nodeArgs(): string[] {
  return (process.env.TRIVET_NODE_ARGS ?? "").split(" ").filter(Boolean);
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

export class RaftProcessCluster {
  readonly nodes = new Map<number, ProcessNode>();
  private readonly ownsDir: boolean;

  private constructor(readonly dir: string, private readonly opts: ClusterOptions, ownsDir: boolean) {
    this.ownsDir = ownsDir;
  }

  static async start(opts: ClusterOptions = {}): Promise<RaftProcessCluster> {
    const size = opts.size ?? 3;
    const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), "trivet-raft-"));
    const c = new RaftProcessCluster(dir, opts, !opts.dir);
    for (let id = 1; id <= size; id++) {
      const raftAddress = `127.0.0.1:${await freePort()}`;
      const apiAddress = `127.0.0.1:${await freePort()}`;
      c.nodes.set(id, {
        id, raftAddress, apiAddress,
        dataDir: path.join(dir, `node${id}`),
        logFile: path.join(dir, `node${id}.log`),
        client: new KvClient(apiAddress),
      });
    }
    await Promise.all([...c.nodes.keys()].map((id) => c.launch(id)));
    await c.waitForLeader();
    return c;
  }

  private members(): string {
    return [...this.nodes.values()].map((n) => `${n.id}=${n.raftAddress}`).join(",");
  }

  /** Starts (or restarts) a node's process and waits until its API answers. */
  async launch(id: number): Promise<void> {
    const n = this.nodes.get(id)!;
    const args = ["raft", "serve", "--id", String(id), "--data-dir", n.dataDir, "--raft", n.raftAddress, "--api", n.apiAddress,
      "--members", this.members(), "--log-level", this.opts.logLevel ?? "info"];
    if (this.opts.tickMs) args.push("--tick-ms", String(this.opts.tickMs));
    if (this.opts.electionTicks) args.push("--election-ticks", String(this.opts.electionTicks));
    const log = fs.openSync(n.logFile, "a");
    const [cmd, argv] = this.opts.binary
      ? [this.opts.binary, args]
      : [process.execPath, [...nodeArgs(), "--import", "tsx", path.join(repoRoot, "cmd/trivet.ts"), ...args]];
    n.proc = spawn(cmd, argv, { cwd: repoRoot, stdio: ["ignore", log, log] });
    fs.closeSync(log);
    const end = Date.now() + startTimeoutMs;
    for (;;) {
      if (n.proc.exitCode !== null) throw new Error(`node ${id} exited with ${n.proc.exitCode} while starting; log: ${n.logFile}\n${this.tail(id)}`);
      try {
        await n.client.status(1_000);
        return;
      } catch {
        if (Date.now() > end) throw new Error(`node ${id} did not answer within ${startTimeoutMs} ms; log: ${n.logFile}\n${this.tail(id)}`);
        await sleep(100);
      }
    }
  }

  tail(id: number, lines = 20): string {
    try {
      return fs.readFileSync(this.nodes.get(id)!.logFile, "utf8").trim().split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  }

  running(): ProcessNode[] {
    return [...this.nodes.values()].filter((n) => n.proc && n.proc.exitCode === null && n.proc.signalCode === null);
  }

  /** The leader agreed on by a running node that reports itself leader (bounded wait). */
  async waitForLeader(timeoutMs = 20_000, exclude?: number): Promise<number> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      const statuses = await Promise.all(this.running().map((n) => n.client.status(1_000).catch(() => undefined)));
      const leader = statuses.find((s): s is KvStatus => s?.role === "leader" && s.id !== exclude);
      if (leader) return leader.id;
      await sleep(50);
    }
    throw new Error(`no leader within ${timeoutMs} ms\n${this.describe()}`);
  }

  /** Each node's process state and the end of its log, for failure messages. */
  describe(): string {
    return [...this.nodes.values()].map((n) => {
      const p = n.proc;
      const state = !p ? "not started" : p.exitCode !== null ? `exited ${p.exitCode}` : p.signalCode !== null ? `killed by ${p.signalCode}` : "running";
      return `node ${n.id} (${state}), log ${n.logFile}:\n${this.tail(n.id, 8)}`;
    }).join("\n");
  }

  /** kill -9 a node's process and wait until it is gone. */
  async kill(id: number): Promise<void> {
    const p = this.nodes.get(id)!.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once("exit", r));
    p.kill("SIGKILL");
    await gone;
  }

  pids(): number[] {
    return this.running().map((n) => n.proc!.pid!).filter(Boolean);
  }

  async stop(): Promise<void> {
    for (const n of this.nodes.values()) n.client.close();
    await Promise.all([...this.nodes.values()].map(async (n) => {
      const p = n.proc;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const gone = new Promise((r) => p.once("exit", r));
      p.kill("SIGTERM");
      const timer = setTimeout(() => p.kill("SIGKILL"), stopTimeoutMs);
      await gone;
      clearTimeout(timer);
    }));
    if (this.ownsDir && !process.env.TRIVET_KEEP_TEST_DIRS) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
