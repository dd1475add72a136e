import { RaftProcessCluster } from "./raft-processes.ts";
import { KvClient } from "../../core/api/kv-service.ts";
const c = await RaftProcessCluster.start({ logLevel: "warn" });
const leader = c.nodes.get(await c.waitForLeader())!;
const v = new Uint8Array(256);
async function stats(label: string) { for (const n of c.nodes.values()) { const s = await n.client.status(); const st = s.stats; console.log(label, `n${n.id} ${s.role} readies=${st.readies} persists=${st.persists} ent/persist=${(st.persistedEntries / st.persists).toFixed(1)} persistMs/persist=${(st.persistMs / st.persists).toFixed(3)} applies=${st.applies} ent/apply=${(st.appliedEntries / st.applies).toFixed(1)} applyMs/apply=${(st.applyMs / st.applies).toFixed(3)} persistMs=${st.persistMs.toFixed(0)} applyMs=${st.applyMs.toFixed(0)}`); } }
const lat: number[] = [];
for (let i = 0; i < 1000; i++) { const t = performance.now(); await leader.client.put(Buffer.from(`k${i % 100}`), v); lat.push(performance.now() - t); }
lat.sort((a, b) => a - b);
console.log("1 client: p50", lat[500]!.toFixed(2), "p90", lat[900]!.toFixed(2), "p99", lat[990]!.toFixed(2));
await stats("after 1c");
const addrs = process.env.SPREAD ? [...c.nodes.values()].map((n) => n.apiAddress) : [leader.apiAddress];
const clients = Array.from({ length: 100 }, (_, i) => new KvClient(addrs[i % addrs.length]!, { "grpc.use_local_subchannel_pool": 1 }));
let n = 0; const t0 = performance.now();
const mon = setInterval(async () => { const s = await leader.client.status(); console.log("leader", JSON.stringify((s as any).progress ?? null), "pending", s.pending, "commit", s.commit); }, 1000);
await Promise.all(Array.from({ length: 1000 }, async (_, i) => { while (performance.now() - t0 < 5000) { await clients[i % 100]!.put(Buffer.from(`k${i}`), v); n++; } }));
clearInterval(mon);
console.log("1000 clients:", Math.round(n / ((performance.now() - t0) / 1000)), "w/s");
await stats("after 1000c");
for (const cl of clients) cl.close();
await c.stop();
