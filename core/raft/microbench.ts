// Micro-benchmark of the Raft core alone: three in-memory RaftNodes, messages delivered in a
// loop, no I/O. Measures how many entries per second a 3-node group commits and applies when
// the core is the only cost. Run: npx tsx core/raft/microbench.ts [entries] [batch] [payloadBytes]

import { RaftNode } from "./node.ts";
import { MemoryStorage } from "./memory-storage.ts";
import type { Message, NodeId } from "./types.ts";

const totalEntries = Number(process.argv[2] ?? 300_000);
const batch = Number(process.argv[3] ?? 64);
const payloadBytes = Number(process.argv[4] ?? 128);
/** Pump rounds without progress before giving up (a stuck group is a bug, not slowness). */
const maxIdleRounds = 1000;

const ids: NodeId[] = [1, 2, 3];
const stores = new Map<NodeId, MemoryStorage>();
const nodes = new Map<NodeId, RaftNode>();
for (const id of ids) {
  const storage = new MemoryStorage();
  RaftNode.bootstrap(storage, ids);
  stores.set(id, storage);
  nodes.set(id, new RaftNode({
    id, electionTick: 10, heartbeatTick: 1, storage, applied: 0,
    maxSizePerMsgBytes: 1 << 20, maxInflightMsgs: 256, maxUncommittedEntriesBytes: 64 << 20,
    maxCommittedSizePerReadyBytes: 16 << 20, checkQuorum: true, preVote: true, rand: { intn: () => 0 },
  }));
}
const inbox = new Map<NodeId, Message[]>(ids.map((id) => [id, []]));
let applied = 0;

function pump(): boolean {
  let progressed = false;
  for (const id of ids) {
    const n = nodes.get(id)!;
    if (!n.hasReady()) continue;
    progressed = true;
    const rd = n.ready();
    const st = stores.get(id)!;
    if (rd.snapshot) st.applySnapshot(rd.snapshot);
    st.append(rd.entries, rd.mustSync);
    if (rd.hardState) st.setHardState(rd.hardState, rd.mustSync);
    for (const m of rd.messages) inbox.get(m.to)!.push(m);
    if (id === 1) for (const e of rd.committedEntries) if (e.data.length > 0) applied++;
    n.advance(rd);
  }
  for (const id of ids) {
    const box = inbox.get(id)!;
    if (box.length === 0) continue;
    progressed = true;
    inbox.set(id, []);
    const n = nodes.get(id)!;
    for (const m of box) n.step(m);
  }
  return progressed;
}

nodes.get(1)!.campaign();
while (pump()) { /* elect */ }

const payload = new Uint8Array(payloadBytes).fill(7);
const start = process.hrtime.bigint();
let proposed = 0;
let idle = 0;
while (applied < totalEntries) {
  for (let i = 0; i < batch && proposed < totalEntries; i++, proposed++) nodes.get(1)!.propose(payload);
  if (pump()) idle = 0;
  else if (++idle > maxIdleRounds) throw new Error(`stuck at ${applied}/${totalEntries} applied`);
}
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
const st = nodes.get(1)!.status();
console.log(`${totalEntries} entries of ${payloadBytes} B, ${batch} proposals per pump round: ${(totalEntries / seconds).toFixed(0)} entries/s committed+applied (${seconds.toFixed(2)} s), leader commit=${st.commit}`);
