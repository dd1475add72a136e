// `npx tsx test/bench/replication.ts`: write throughput of a ReplicatedBackend with three
// replicas over mutual TLS on loopback: the local brick file plus two replica servers, each in
// its own child process (this file with --serve), as they would be on other hosts. Drives the
// backend directly (no NBD layer): 4 KiB random writes at QD32 and 1 MiB sequential writes at
// QD16, then a flush. Prints one line per job and a JSON summary as the last line.
//
// Environment: BENCH_RUNTIME_S (per job, default 5), BENCH_IMAGE_MIB (default 1024),
// BENCH_SYNC_IO (1: pwrite on the calling thread, FileBackend syncIoBytesMax 64 KiB, in the
// coordinator and the servers, as a data-path worker may; the default 0 goes through the libuv
// pool as the daemon's main thread must), BENCH_DIR.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { createClusterCa, createCsr, generateNodeKey, newSerial, signNodeCert } from "../../core/cluster/pki.ts";
import type { TlsIdentity } from "../../core/cluster/tls.ts";
import { FileBackend } from "../../storage/brick/file-backend.ts";
import { ReplicaClient } from "../../storage/replication/replica-client.ts";
import { ReplicaServer } from "../../storage/replication/replica-server.ts";
import { LocalReplica } from "../../storage/replication/replica-target.ts";
import { ReplicatedBackend } from "../../storage/replication/replicated-backend.ts";
import { connectReplicaTls, listenReplicationTls } from "../../storage/replication/tls-channel.ts";

const mib = 1024 * 1024;
const startTimeoutMs = 30_000;

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  const n = raw === undefined || raw === "" ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`reading ${name}: "${raw}" is not a whole number`);
  return n;
}

/** Child: a replica server for one brick directory; prints its port, runs until stdin closes. */
async function serve(): Promise<void> {
  const { identity, brick } = JSON.parse(process.env.BENCH_SERVE ?? "{}") as { identity: TlsIdentity; brick: string };
  const syncIoBytesMax = envInt("BENCH_SYNC_IO", 0) === 1 ? 64 * 1024 : 0;
  const server = new ReplicaServer({
    resolveImage: (id) => ({ path: join(brick, `${id}.raw`), format: "raw" }),
    openImage: (path, sizeBytes) => FileBackend.open({ path, sizeBytes, syncIoBytesMax }),
  });
  const listener = await listenReplicationTls(server, identity);
  process.stdout.write(`${(listener.address() as { port: number }).port}\n`);
  process.stdin.resume();
  process.stdin.on("end", () => process.exit(0));
}

async function identities(names: string[]): Promise<Record<string, TlsIdentity>> {
  const ca = await createClusterCa({ clusterName: "bench", nowMs: Date.now() });
  const out: Record<string, TlsIdentity> = {};
  for (const nodeName of names) {
    const { keyPem } = await generateNodeKey();
    const csrPem = await createCsr({ nodeName, addresses: ["127.0.0.1"], keyPem });
    const certPem = await signNodeCert({ ca, csrPem, nodeName, addresses: ["127.0.0.1"], nowMs: Date.now(), serial: newSerial() });
    out[nodeName] = { caPem: ca.certPem, certPem, keyPem };
  }
  return out;
}

function startServer(identity: TlsIdentity, brick: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), "--serve"], {
    env: { ...process.env, BENCH_SERVE: JSON.stringify({ identity, brick }) },
    stdio: ["pipe", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`replica server did not start within ${startTimeoutMs} ms`)), startTimeoutMs);
    createInterface({ input: child.stdout! }).once("line", (line) => {
      clearTimeout(timer);
      resolve({ child, port: Number(line) });
    });
    child.once("exit", (code) => reject(new Error(`replica server exited with ${code}`)));
  });
}

interface JobResult {
  iops: number;
  mibPerS: number;
  /** CPU time (user + system) of the coordinator process per write: what bounds IOPS per core. */
  coordinatorCpuUsPerOp: number;
}

async function runJob(b: ReplicatedBackend, blockBytes: number, depth: number, random: boolean, runtimeMs: number): Promise<JobResult> {
  const blocks = Math.floor(b.sizeBytes / blockBytes);
  const payloads = Array.from({ length: depth }, () => randomBytes(blockBytes));
  let ops = 0;
  let seq = 0;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const deadline = start + runtimeMs;
  const worker = async (w: number): Promise<void> => {
    while (performance.now() < deadline) {
      const block = random ? Math.floor(Math.random() * blocks) : seq++ % blocks;
      await b.write(block * blockBytes, payloads[w]!, { fua: false });
      ops++;
    }
  };
  await Promise.all(Array.from({ length: depth }, (_, w) => worker(w)));
  await b.flush();
  const secs = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { iops: Math.round(ops / secs), mibPerS: Math.round((ops * blockBytes) / mib / secs), coordinatorCpuUsPerOp: Math.round((cpu.user + cpu.system) / ops) };
}

async function main(): Promise<void> {
  const runtimeMs = envInt("BENCH_RUNTIME_S", 5) * 1000;
  const sizeBytes = envInt("BENCH_IMAGE_MIB", 1024) * mib;
  const syncIo = envInt("BENCH_SYNC_IO", 0) === 1;
  const dir = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), "trivet-bench-repl-"));
  const ids = await identities(["a", "b", "c"]);
  const servers: ChildProcess[] = [];
  try {
    const remotes: ReplicaClient[] = [];
    for (const node of ["b", "c"]) {
      const brick = join(dir, node);
      mkdirSync(brick);
      const { child, port } = await startServer(ids[node]!, brick);
      servers.push(child);
      remotes.push(
        new ReplicaClient({ nodeId: node, imageId: "bench", epoch: 1, sizeBytes, connect: () => connectReplicaTls({ host: "127.0.0.1", port, identity: ids.a! }) }),
      );
    }
    await Promise.all(remotes.map((r) => r.open()));
    const file = await FileBackend.open({ path: join(dir, "a.raw"), sizeBytes, syncIoBytesMax: syncIo ? 64 * 1024 : 0 });
    const backend = new ReplicatedBackend({
      imageId: "bench",
      epoch: 1,
      sizeBytes,
      local: new LocalReplica({ nodeId: "a", backend: file }),
      remotes,
      inSync: ["a", "b", "c"],
      control: { markOutOfSync: (nodeId, info) => Promise.reject(new Error(`bench: replica ${nodeId} failed: ${info.reason}`)) },
    });
    const results: Record<string, JobResult> = {};
    results.seqwrite_1m_qd16 = await runJob(backend, mib, 16, false, runtimeMs);
    results.randwrite_4k_qd32 = await runJob(backend, 4096, 32, true, runtimeMs);
    for (const [k, r] of Object.entries(results)) console.log(`${k.padEnd(20)} ${String(r.iops).padStart(8)} IOPS ${String(r.mibPerS).padStart(6)} MiB/s ${String(r.coordinatorCpuUsPerOp).padStart(6)} µs coordinator CPU/op`);
    console.log(JSON.stringify({ bench: "replication", replicas: 3, syncIo, runtimeMs, results }));
    await backend.close();
  } finally {
    for (const s of servers) s.stdin?.end();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv.includes("--serve")) await serve();
else await main();
