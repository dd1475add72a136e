// `npm run bench:api`: requests/s and latency of the one API on a three-node cluster of real
// daemons (set up as `trivet demo` does: init, tokens, joins), for a read (ClusterService
// GetStatus, a local read) and a mutation (UserService SetGrant, one Raft write plus its audit
// entry), each through gRPC and through JSON over HTTPS, with the same closed-loop load.
// Environment: BENCH_DURATION_MS (default 5000 per run), BENCH_CONCURRENCY (default 64).
import https from "node:https";
import { ClusterService } from "../../core/api/gen/trivet/v1/cluster_pb.ts";
import { Role, UserService } from "../../core/api/gen/trivet/v1/users_pb.ts";
import { DaemonCluster } from "../cluster/daemon-cluster.ts";

const durationMs = Number(process.env.BENCH_DURATION_MS ?? 5000);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 64);
const warmupMs = Number(process.env.BENCH_WARMUP_MS ?? 1000);

interface Run { rps: number; p50Ms: number; p99Ms: number; errors: number }

/** Closed loop: each of `concurrency` clients issues its next call when the last returns. The
 * first warmupMs (connections, TLS handshakes, JIT) are not measured. */
async function closedLoop(op: (i: number) => Promise<void>): Promise<Run> {
  const lat: number[] = [];
  let errors = 0;
  let i = 0;
  const start = performance.now() + warmupMs;
  const end = start + durationMs;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      const t = performance.now();
      try {
        await op(i++);
        if (t >= start) lat.push(performance.now() - t);
      } catch {
        if (t >= start) errors++;
      }
    }
  }));
  const t0 = start;
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] ?? NaN;
  return { rps: Math.round(lat.length / ((performance.now() - t0) / 1000)), p50Ms: +q(0.5).toFixed(2), p99Ms: +q(0.99).toFixed(2), errors };
}

function httpPost(agent: https.Agent, host: string, port: number, path: string, token: string, body: unknown): Promise<void> {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request({ agent, host, port, path, method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${token}`, "content-length": Buffer.byteLength(data) } }, (res) => {
      res.resume();
      res.on("end", () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on("error", reject);
    req.end(data);
  });
}

async function main(): Promise<void> {
  const c = new DaemonCluster();
  const nodes = [await c.allocate("n1"), await c.allocate("n2"), await c.allocate("n3")];
  try {
    c.init(nodes[0]!);
    c.serve(nodes[0]!);
    await c.login(nodes[0]!);
    for (const n of nodes.slice(1)) {
      const r = c.join(n, await c.token(nodes[0]!));
      if (r.code !== 0) throw new Error(`join: ${r.stderr}`);
      c.serve(n);
    }
    const s = await c.waitForVoters(nodes[0]!, 3);
    const leader = nodes.find((n) => n.name === s.nodes.find((x) => x.leader)!.name)!;
    const grpcClient = c.client(leader);
    const [host, port] = leader.http.split(":") as [string, string];
    const agent = new https.Agent({ keepAlive: true, maxSockets: concurrency, ca: c.caPem });
    const grant = (i: number) => ({ username: "admin", objectKind: "vm", objectId: `bench-${i % 1000}`, role: Role.OPERATOR });
    const runs = {
      grpc_read: await closedLoop(() => grpcClient.call(ClusterService, "getStatus", {}).then(() => undefined)),
      grpc_write: await closedLoop((i) => grpcClient.call(UserService, "setGrant", { grant: grant(i) }).then(() => undefined)),
      http_read: await closedLoop(() => httpPost(agent, host, Number(port), "/api/v1/trivet.v1.ClusterService/GetStatus", c.adminToken, {})),
      http_write: await closedLoop((i) => httpPost(agent, host, Number(port), "/api/v1/trivet.v1.UserService/SetGrant", c.adminToken, { grant: { ...grant(i), role: "ROLE_OPERATOR" } })),
    };
    grpcClient.close();
    agent.destroy();
    console.log(`three daemons on loopback, ${concurrency} concurrent clients, ${durationMs} ms per run, against the leader ${leader.name}`);
    console.log("call                 req/s    p50 ms   p99 ms  errors");
    for (const [name, r] of Object.entries(runs)) console.log(`${name.padEnd(18)} ${String(r.rps).padStart(7)} ${String(r.p50Ms).padStart(8)} ${String(r.p99Ms).padStart(8)} ${String(r.errors).padStart(7)}`);
    console.log(JSON.stringify({
      bench: "api", http_read_rps: runs.http_read.rps, http_write_rps: runs.http_write.rps, grpc_read_rps: runs.grpc_read.rps, grpc_write_rps: runs.grpc_write.rps,
      p99_ms: { http_read: runs.http_read.p99Ms, http_write: runs.http_write.p99Ms, grpc_read: runs.grpc_read.p99Ms, grpc_write: runs.grpc_write.p99Ms },
    }));
  } finally {
    await c.stop();
  }
}

main().catch((err: unknown) => {
  console.error(`bench:api failed: ${err instanceof Error ? err.stack : String(err)}`);
  process.exitCode = 1;
});
