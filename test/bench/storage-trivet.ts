// The Trivet side of the storage benchmark: a three-node cluster of real daemons (DaemonCluster),
// a replica-3 volume and a 1 GiB raw image made with the CLI as a user would (`trivet volume
// create`, `trivet image create`), and the NBD URI that node 1 serves the image on
// (`<dataDir>/run/nbd.sock`, export "<volume>/<image>"). Any step that fails (for instance a
// CLI command that does not exist yet) rejects with what was being done; the cluster is stopped.
import { execFile } from "node:child_process";
import fs from "node:fs";
import { cli, DaemonCluster, nbdSocket, type DaemonNode } from "../cluster/daemon-cluster.ts";

const votersTimeoutMs = 120_000;
const socketTimeoutMs = 60_000;
const socketPollMs = 200;
const exportTimeoutMs = 60_000;
const qemuImgTimeoutMs = 10_000;
const logTailLines = 5;
const logTailChars = 1500;
export const trivetVolume = "bench";
export const trivetImage = "disk1";

export interface TrivetTarget {
  uri: string;
  stop(): Promise<void>;
  /** The cluster, its nodes (n1 serves `uri`) and the CLI connection flags, for fault benches. */
  cluster: DaemonCluster;
  nodes: DaemonNode[];
  conn: string[];
}

export class TrivetTargetError extends Error {
  constructor(readonly code: "cluster" | "cli" | "nbd_socket" | "nbd_export", message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TrivetTargetError";
  }
}

/** The last lines of a node's log, to say why a daemon is not answering. */
function logTail(n: DaemonNode): string {
  const text = fs.existsSync(n.log) ? fs.readFileSync(n.log, "utf8") : "";
  return text.trim().split("\n").slice(-logTailLines).join(" | ").slice(-logTailChars);
}

/** Runs one set-up step; a failure names the step and, when a daemon has exited, its last log lines. */
async function step<T>(what: string, nodes: DaemonNode[], fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const dead = nodes.filter((n) => n.proc !== undefined && (n.proc.exitCode !== null || n.proc.signalCode !== null));
    const logs = dead.map((n) => `; ${n.name} exited (${n.proc?.exitCode ?? n.proc?.signalCode}), its log: ${logTail(n)}`).join("");
    throw new TrivetTargetError("cluster", `${what}: ${(err as Error).message}${logs}`, { cause: err });
  }
}

async function startCluster(c: DaemonCluster): Promise<DaemonNode[]> {
  const nodes = [await c.allocate("n1"), await c.allocate("n2"), await c.allocate("n3")];
  const [n1, n2, n3] = nodes as [DaemonNode, DaemonNode, DaemonNode];
  await step("trivet init n1", nodes, () => c.init(n1));
  c.serve(n1);
  await step("logging in to n1", nodes, () => c.login(n1));
  for (const n of [n2, n3]) {
    const token = await step(`creating a join token for ${n.name}`, nodes, () => c.token(n1));
    const r = c.join(n, token);
    if (r.code !== 0) throw new TrivetTargetError("cluster", `trivet join ${n.name} exited ${r.code}: ${r.stderr.trim()}`);
    c.serve(n);
  }
  await step("waiting for three voters", nodes, () => c.waitForVoters(n1, 3, votersTimeoutMs));
  return nodes;
}

function qemuImgInfo(uri: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile("qemu-img", ["info", uri], { timeout: qemuImgTimeoutMs }, (err, _out, stderr) =>
      err === null ? resolve() : reject(new Error(`qemu-img info ${uri}: ${String(stderr).trim() || err.message}`)));
  });
}

function runCli(args: string[], conn: string[]): void {
  const r = cli([...args, ...conn]);
  if (r.code !== 0) {
    const why = (r.stderr.trim() || r.stdout.trim()).split("\n").slice(-3).join(" | ");
    throw new TrivetTargetError("cli", `trivet ${args.join(" ")} exited ${r.code}: ${why}`);
  }
}

/** Starts the cluster, creates volume `bench` and image `bench/disk1` (1 GiB raw), returns its NBD URI. */
export async function startTrivetTarget(): Promise<TrivetTarget> {
  const c = new DaemonCluster();
  try {
    const nodes = await startCluster(c);
    const n1 = nodes[0]!;
    const conn = c.conn(n1);
    runCli(["volume", "create", trivetVolume, "--replicas", "3"], conn);
    runCli(["image", "create", trivetImage, "--volume", trivetVolume, "--size", "1G"], conn);
    const socketPath = nbdSocket(n1);
    await DaemonCluster.retry(async () => fs.statSync(socketPath), socketTimeoutMs, socketPollMs).catch((err: unknown) => {
      throw new TrivetTargetError("nbd_socket", `waiting for node n1's NBD socket ${socketPath}: not there after ${socketTimeoutMs} ms`, { cause: err });
    });
    const uri = `nbd+unix:///${trivetVolume}/${trivetImage}?socket=${socketPath}`;
    // The node exports an image once its storage loop has provisioned the brick file: wait for it.
    await DaemonCluster.retry(() => qemuImgInfo(uri), exportTimeoutMs, socketPollMs).catch((err: unknown) => {
      throw new TrivetTargetError("nbd_export", `waiting for node n1 to export ${trivetVolume}/${trivetImage}: ${(err as Error).message}`, { cause: err });
    });
    return { uri, stop: () => c.stop(), cluster: c, nodes, conn };
  } catch (err) {
    await c.stop();
    throw err;
  }
}
