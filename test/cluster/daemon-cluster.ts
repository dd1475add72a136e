// A harness for clusters of real `trivet serve` daemons on loopback, set up the way a user
// does it: `trivet init`, `trivet cluster token create` (through the API), `trivet join`.
// Processes run from source (tsx) or from a built binary; logs are kept per node.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { ApiClient } from "../../core/api/client.ts";
import { AuthService, CredentialKind } from "../../core/api/gen/trivet/v1/auth_pb.ts";
import { ClusterService, NodeRole } from "../../core/api/gen/trivet/v1/cluster_pb.ts";
import { freePort } from "./raft-processes.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const cliTimeoutMs = 60_000;
export const adminPassword = "correct-horse-battery";

export interface DaemonNode {
  name: string;
  dataDir: string;
  api: string;
  peer: string;
  http: string;
  proc?: ChildProcess;
  log: string;
  /** Argv prefix that runs the node's processes elsewhere (a network namespace: netns.ts). */
  exec?: string[];
}

export function trivetArgv(args: string[]): [string, string[]] {
  const bin = process.env.TRIVET_BINARY;
  // TRIVET_NODE_ARGS passes node flags to the daemons, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
  const nodeArgs = (process.env.TRIVET_NODE_ARGS ?? "").split(" ").filter(Boolean);
  return bin ? [bin, args] : [process.execPath, [...nodeArgs, "--import", "tsx", path.join(repoRoot, "cmd/trivet.ts"), ...args]];
}

/** Runs a CLI command to completion; returns its exit code and output. */
export function cli(args: string[], env: Record<string, string> = {}, exec: string[] = []): { code: number; stdout: string; stderr: string } {
  const [cmd, argv] = wrapped(exec, trivetArgv(args));
  const r = spawnSync(cmd, argv, { cwd: repoRoot, encoding: "utf8", timeout: cliTimeoutMs, env: { ...process.env, ...env } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A node's NBD socket: it exports every image it has a copy of there, as "<volume>/<image>". */
export function nbdSocket(n: DaemonNode): string {
  return path.join(n.dataDir, "run", "nbd.sock");
}

export function nbdUri(n: DaemonNode, exportName: string): string {
  return `nbd+unix:///${exportName}?socket=${nbdSocket(n)}`;
}

const exportProbeTimeoutMs = 60_000;

/** Waits until every node serves the export (each node's storage agent makes its file first). */
export async function waitForExport(nodes: readonly DaemonNode[], exportName: string, timeoutMs: number): Promise<void> {
  for (const n of nodes) {
    await DaemonCluster.retry(async () => {
      const r = spawnSync("qemu-io", ["-r", "-f", "raw", "-c", "read 0 512", nbdUri(n, exportName)], { encoding: "utf8", timeout: exportProbeTimeoutMs });
      if (r.status !== 0) throw new Error(`${n.name} does not serve ${exportName} yet: ${r.stdout}${r.stderr}`);
    }, timeoutMs, 500);
  }
}

function wrapped(exec: string[] | undefined, [cmd, argv]: [string, string[]]): [string, string[]] {
  return exec && exec.length > 0 ? [exec[0]!, [...exec.slice(1), cmd, ...argv]] : [cmd, argv];
}

export class DaemonCluster {
  readonly nodes = new Map<string, DaemonNode>();
  caPem = "";
  adminToken = "";

  constructor(readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), "trivet-cluster-"))) {
    fs.writeFileSync(path.join(dir, "password"), `${adminPassword}\n`);
  }

  /** A node on 127.0.0.1, or on `host` with its processes run through `exec` (a namespace). */
  async allocate(name: string, where: { host?: string; exec?: string[] } = {}): Promise<DaemonNode> {
    const host = where.host ?? "127.0.0.1";
    const n: DaemonNode = {
      name, dataDir: path.join(this.dir, name), log: path.join(this.dir, `${name}.log`), exec: where.exec,
      api: `${host}:${await freePort()}`, peer: `${host}:${await freePort()}`, http: `${host}:${await freePort()}`,
    };
    this.nodes.set(name, n);
    return n;
  }

  portFlags(n: DaemonNode): string[] {
    const p = (a: string) => a.split(":")[1]!;
    return ["--address", n.api.split(":")[0]!, "--api-port", p(n.api), "--peer-port", p(n.peer), "--http-port", p(n.http), "--data-dir", n.dataDir];
  }

  init(n: DaemonNode): void {
    const r = cli(["init", "--name", n.name, ...this.portFlags(n), "--cluster-name", "test", "--admin-password-file", path.join(this.dir, "password")], {}, n.exec);
    if (r.code !== 0) throw new Error(`trivet init failed (${r.code}): ${r.stderr}`);
    this.caPem = fs.readFileSync(path.join(n.dataDir, "tls", "ca.crt"), "utf8");
  }

  join(n: DaemonNode, token: string): { code: number; stdout: string; stderr: string } {
    return cli(["join", token, "--name", n.name, ...this.portFlags(n)], {}, n.exec);
  }

  serve(n: DaemonNode): void {
    const [cmd, argv] = wrapped(n.exec, trivetArgv(["serve", "--data-dir", n.dataDir, "--log-level", "info"]));
    const out = fs.openSync(n.log, "a");
    n.proc = spawn(cmd, argv, { cwd: repoRoot, stdio: ["ignore", out, out] });
    fs.closeSync(out);
  }

  async kill(n: DaemonNode): Promise<void> {
    const p = n.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once("exit", r));
    p.kill("SIGKILL");
    await gone;
  }

  client(n: DaemonNode, opts: { token?: string; linearizable?: boolean } = {}): ApiClient {
    return new ApiClient(n.api, grpc.credentials.createSsl(Buffer.from(this.caPem)), { token: opts.token ?? this.adminToken, linearizable: opts.linearizable, callTimeoutMs: 10_000 });
  }

  /** Retries `fn` until it resolves (bounded); the last error is rethrown. */
  static async retry<T>(fn: () => Promise<T>, timeoutMs: number, pauseMs = 200): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await fn();
      } catch (err) {
        if (Date.now() > end) throw err;
        await new Promise((r) => setTimeout(r, pauseMs));
      }
    }
  }

  async login(n: DaemonNode): Promise<void> {
    const c = this.client(n, { token: "" });
    try {
      const r = await DaemonCluster.retry(() => c.call(AuthService, "login", { username: "admin", password: adminPassword, kind: CredentialKind.TOKEN, tokenName: "test" }), 30_000);
      this.adminToken = r.apiToken;
    } finally {
      c.close();
    }
  }

  async token(via: DaemonNode, ttlSeconds = 600): Promise<string> {
    const c = this.client(via);
    try {
      return (await DaemonCluster.retry(() => c.call(ClusterService, "createJoinToken", { ttlSeconds }), 30_000)).token;
    } finally {
      c.close();
    }
  }

  async status(via: DaemonNode) {
    const c = this.client(via);
    try {
      return await c.call(ClusterService, "getStatus", {});
    } finally {
      c.close();
    }
  }

  /** Waits until `via` reports `voters` voters and a leader. */
  async waitForVoters(via: DaemonNode, voters: number, timeoutMs = 60_000) {
    return DaemonCluster.retry(async () => {
      const s = await this.status(via);
      const n = s.nodes.filter((x) => x.role === NodeRole.VOTER).length;
      if (n !== voters || s.leaderId === 0n) throw new Error(`${n} voters, leader ${s.leaderId}`);
      return s;
    }, timeoutMs);
  }

  /**
   * The usual three-node cluster: allocates n1..n3 (placed by `where`, default 127.0.0.1),
   * initializes n1, joins n2 and n3 and waits until all three are voters; logged in as admin.
   */
  async startThree(where: (name: string) => { host?: string; exec?: string[] } = () => ({})): Promise<DaemonNode[]> {
    const nodes: DaemonNode[] = [];
    for (const name of ["n1", "n2", "n3"]) nodes.push(await this.allocate(name, where(name)));
    const [n1, ...rest] = nodes as [DaemonNode, ...DaemonNode[]];
    this.init(n1);
    this.serve(n1);
    await this.login(n1);
    for (const [i, n] of rest.entries()) {
      const r = this.join(n, await this.token(n1));
      if (r.code !== 0) throw new Error(`trivet join ${n.name} failed (${r.code}): ${r.stderr}`);
      this.serve(n);
      await this.waitForVoters(n1, i === 0 ? 1 : 3);
    }
    return nodes;
  }

  /**
   * startThree, then what the replicated-storage suites share: an API client and CLI flags that
   * reach n2 (so n1 or n3 may be killed) and a replica-3 volume "vol" made with the CLI.
   */
  async startThreeWithVolume(where?: (name: string) => { host?: string; exec?: string[] }): Promise<{ nodes: DaemonNode[]; api: ApiClient; conn: string[] }> {
    const nodes = await this.startThree(where);
    const api = this.client(nodes[1]!, { linearizable: true });
    const conn = this.conn(nodes[1]!);
    const v = cli(["volume", "create", "vol", ...conn]);
    if (v.code !== 0) {
      api.close();
      throw new Error(`trivet volume create vol failed (${v.code}): ${v.stderr}`);
    }
    return { nodes, api, conn };
  }

  /** CLI flags that reach `via`'s API as the administrator. */
  conn(via: DaemonNode): string[] {
    const n1 = [...this.nodes.values()][0]!;
    return ["--server", via.api, "--token", this.adminToken, "--ca-file", path.join(n1.dataDir, "tls", "ca.crt")];
  }

  async stop(): Promise<void> {
    await Promise.all([...this.nodes.values()].map(async (n) => {
      const p = n.proc;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const gone = new Promise((r) => p.once("exit", r));
      p.kill("SIGTERM");
      const t = setTimeout(() => p.kill("SIGKILL"), 10_000);
      await gone;
      clearTimeout(t);
    }));
    if (!process.env.TRIVET_KEEP_TEST_DIRS) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
