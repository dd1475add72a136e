// Three replicas in one process on the in-memory transport, with real SQLite files: the
// driver's Ready loop, forwarding, linearizable reads, restart and snapshot catch-up, and one
// regression test per driver bug found (see the comment above each).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MemoryHub } from "../raft/driver/memory-transport.ts";
import { ConfChangeType, MessageType } from "../raft/types.ts";
import { Replica, type ReplicaOptions } from "./replica.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | null) => (b ? new TextDecoder().decode(b) : null);

/** How `p` settled within boundMs: its value, its error, or "pending" (a hung promise). */
async function settleWithin<T>(p: Promise<T>, boundMs: number): Promise<{ value: T } | { error: unknown } | "pending"> {
  let timer: NodeJS.Timeout | undefined;
  const pending = new Promise<"pending">((r) => { timer = setTimeout(() => r("pending"), boundMs); });
  try {
    return await Promise.race([p.then((value) => ({ value }), (error: unknown) => ({ error })), pending]);
  } finally {
    clearTimeout(timer);
  }
}

describe("Replica on three nodes", () => {
  let dir: string;
  let hub: MemoryHub;
  let nodes: Map<number, Replica>;
  const members = new Map([[1, "n1"], [2, "n2"], [3, "n3"]]);

  const open = (id: number, snapshotEveryEntries = 1000, host: ReplicaOptions["host"] = {}) =>
    Replica.open({ id, dataDir: path.join(dir, `n${id}`), transport: hub.transport(id), initialMembers: members, host: { tickMs: 10, snapshotEveryEntries, ...host }, snapshotCatchUpEntries: 10 });

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "trivet-replica-"));
    hub = new MemoryHub();
    nodes = new Map();
  });

  afterEach(async () => {
    await Promise.all([...nodes.values()].map((n) => n.close()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** The leader among the running nodes, as the running nodes see it (bounded wait). */
  async function leaderOf(): Promise<Replica> {
    for (let i = 0; i < 1000; i++) {
      const leader = nodes.get([...nodes.values()][0]!.host.leaderInfo().leader);
      if (leader?.host.leaderInfo().leader === leader?.host.id && leader) return leader;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error("no leader among the running nodes within 10 s");
  }

  it("elects a leader, commits through leader and followers, and reads linearizably anywhere", async () => {
    for (const id of [1, 2, 3]) nodes.set(id, await open(id));
    const leader = await leaderOf();
    const follower = [...nodes.values()].find((n) => n !== leader)!;
    expect(await leader.execute({ type: "kv.put", key: enc("a"), value: enc("1") })).toEqual({ ok: true, version: 1 });
    expect(await follower.execute({ type: "kv.put", key: enc("a"), value: enc("2") })).toEqual({ ok: true, version: 2 });
    const cas = await follower.execute({ type: "kv.cas", key: enc("a"), expectedVersion: 1, value: enc("x") });
    expect(cas).toMatchObject({ ok: false, code: "version_mismatch" });
    for (const n of nodes.values()) {
      const r = await n.get(enc("a"), "linearizable");
      expect(dec(r.value)).toBe("2");
      expect(r.version).toBe(2);
    }
  });

  it("applies a retried request once (same request id)", async () => {
    for (const id of [1, 2, 3]) nodes.set(id, await open(id));
    const leader = await leaderOf();
    const req = { clientId: "client-a", seq: 1 };
    await leader.execute({ type: "kv.put", key: enc("k"), value: enc("v") }, req);
    const again = await leader.execute({ type: "kv.put", key: enc("k"), value: enc("v") }, req);
    expect(again).toEqual({ ok: true, version: 1 });
    expect((await leader.get(enc("k"), "linearizable")).version).toBe(1);
  });

  it("survives the loss of the leader and lets it catch up from a snapshot on restart", async () => {
    for (const id of [1, 2, 3]) nodes.set(id, await open(id, 50));
    const leader = await leaderOf();
    await leader.execute({ type: "kv.put", key: enc("before"), value: enc("1") });
    const downId = leader.host.id;
    await leader.close();
    nodes.delete(downId);
    const next = await leaderOf();
    expect(next.host.id).not.toBe(downId);
    const writes = Array.from({ length: 300 }, (_, i) => next.execute({ type: "kv.put", key: enc(`k${i % 40}`), value: enc(`v${i}`) }));
    await Promise.all(writes);
    nodes.set(downId, await open(downId, 50));
    const back = nodes.get(downId)!;
    const target = next.stateMachine.appliedIndex;
    for (let i = 0; i < 500 && back.stateMachine.appliedIndex < target; i++) await new Promise((r) => setTimeout(r, 10));
    expect(back.stateMachine.appliedIndex).toBeGreaterThanOrEqual(target);
    expect(back.stateMachine.checksum()).toBe(next.stateMachine.checksum());
    // It caught up through InstallSnapshot, not the log: the leader had compacted past it.
    expect(next.store.firstIndex()).toBeGreaterThan(10);
    expect(back.store.snapshot().metadata.index).toBeGreaterThan(10);
    expect(dec((await back.get(enc("before"))).value)).toBe("1");
  });
  // A follower's election starts on a tick; reads queued before the driver sees the new role
  // used to reach Raft as a ReadIndex at a candidate, whose refusal was thrown out of the
  // driver's turn and killed the process (seen as "no leader" in the three-process test).
  it("keeps queued linearizable reads alive through elections, and answers them once a leader is back", async () => {
    for (const id of [1, 2, 3]) nodes.set(id, await open(id));
    const cyclesMax = 8;
    let answered = 0;
    for (let cycle = 0; cycle < cyclesMax; cycle++) {
      const leader = await leaderOf();
      const others = [...nodes.values()].filter((n) => n !== leader);
      for (const o of others) {
        hub.cut.add(`${leader.host.id}->${o.host.id}`);
        hub.cut.add(`${o.host.id}->${leader.host.id}`);
      }
      const reads: Promise<unknown>[] = [];
      const issuer = setInterval(() => {
        for (const o of others) reads.push(o.host.linearizableRead().then(() => answered++, () => undefined));
      }, 1);
      for (let i = 0; i < 500 && others.every((o) => o.host.leaderInfo().leader === leader.host.id); i++) await new Promise((r) => setTimeout(r, 2));
      await new Promise((r) => setTimeout(r, 50));
      clearInterval(issuer);
      hub.cut.clear();
      await Promise.all(reads);
    }
    expect(answered).toBeGreaterThan(0);
    for (const n of nodes.values()) expect((await n.get(enc("x"), "linearizable")).value).toBeNull();
  });

  // Found by review while building replica-chaos.test.ts (where it only shows as retries): the
  // leader drops proposals while a leadership transfer is under way; when the transfer was
  // abandoned (its target unreachable) nothing re-proposed them, since the leader did not
  // change, so they waited for their deadline and failed.
  it("proposes again at the leader once a transfer to an unreachable node is abandoned", async () => {
    const proposalTimeoutMs = 5_000;
    for (const id of [1, 2, 3]) nodes.set(id, await open(id, 1000, { proposalTimeoutMs }));
    const leader = await leaderOf();
    await leader.execute({ type: "kv.put", key: enc("warm"), value: enc("1") });
    const target = [...nodes.values()].find((n) => n !== leader)!;
    hub.cut.add(`${leader.host.id}->${target.host.id}`);
    hub.cut.add(`${target.host.id}->${leader.host.id}`);
    leader.host.transferLeadership(target.host.id);
    const t0 = performance.now();
    const out = await settleWithin(leader.execute({ type: "kv.put", key: enc("during"), value: enc("1") }), proposalTimeoutMs + 1_000);
    expect(out).toEqual({ value: { ok: true, version: 1 } });
    // An abandoned transfer lasts one election timeout (10 ticks of 10 ms), not a proposal timeout.
    expect(performance.now() - t0).toBeLessThan(proposalTimeoutMs / 2);
    expect(leader.host.leaderInfo().leader).toBe(leader.host.id);
  });

  // Found by review while building replica-chaos.test.ts: a read whose index had arrived but
  // was not applied yet had no deadline, so a follower cut off from the leader's appends right
  // then held the caller until the partition healed.
  it("fails a linearizable read by its deadline when the follower cannot apply up to the read index", async () => {
    const readTimeoutMs = 300;
    for (const id of [1, 2, 3]) nodes.set(id, await open(id, 1000, { readTimeoutMs }));
    const leader = await leaderOf();
    const follower = [...nodes.values()].find((n) => n !== leader)!;
    await leader.execute({ type: "kv.put", key: enc("a"), value: enc("1") });
    // The follower hears the answer to its read, but none of the appends or heartbeats it needs.
    const [l, f] = [leader.host.id, follower.host.id];
    hub.links = { delayMs: () => 0, drop: (from, to, m) => from === l && to === f && m.type !== MessageType.ReadIndexResp };
    await leader.execute({ type: "kv.put", key: enc("a"), value: enc("2") });
    const out = await settleWithin(follower.get(enc("a"), "linearizable"), readTimeoutMs + 2_000);
    expect(out).not.toBe("pending");
    expect(out).toMatchObject({ error: { code: "timeout" } });
    hub.links = undefined;
    expect(dec((await follower.get(enc("a"), "linearizable")).value)).toBe("2");
  });

  // Found by review while building replica-chaos.test.ts: read contexts were "r<node>-<seq>"
  // with seq restarting at 1, so a restarted node's read could share its context with a read
  // of its previous life still pending at the leader, which ignored the new one as a duplicate
  // and answered it with the old read's index: a stale "linearizable" read.
  it("does not answer a restarted node's read with the index of a read from before the restart", async () => {
    const host = { electionTicks: 50 }; // the leader keeps its lease while confirmations are held back
    for (const id of [1, 2, 3]) nodes.set(id, await open(id, 1000, host));
    const leader = await leaderOf();
    const follower = [...nodes.values()].find((n) => n !== leader)!;
    const fid = follower.host.id;
    await leader.execute({ type: "kv.put", key: enc("a"), value: enc("1") });
    // Hold back every read confirmation, so the follower's read stays pending at the leader.
    let holdConfirmations = true;
    hub.links = { delayMs: () => 0, drop: (_from, to, m) => holdConfirmations && to === leader.host.id && m.type === MessageType.HeartbeatResp };
    const before = follower.get(enc("a"), "linearizable").catch(() => undefined);
    await new Promise((r) => setTimeout(r, 30));
    await follower.close();
    await before;
    nodes.delete(fid);
    await leader.execute({ type: "kv.put", key: enc("a"), value: enc("2") });
    const back = await open(fid, 1000, host);
    nodes.set(fid, back);
    await back.host.waitForLeader(2_000);
    const after = back.get(enc("a"), "linearizable");
    await new Promise((r) => setTimeout(r, 30));
    holdConfirmations = false;
    const out = await settleWithin(after, 3_000);
    expect(out).not.toBe("pending");
    expect(dec((out as { value: { value: Uint8Array | null } }).value.value)).toBe("2");
  });

  // Found by review while building replica-chaos.test.ts: after a leader change the driver
  // proposes its pending membership change again; when this node is the new leader and its
  // first proposal is in the log but not applied yet, Raft refuses the second one
  // (conf_change_pending) and the caller was told the change failed, while it then took effect.
  it("resolves a membership change proposed again by a node that became leader before applying it", async () => {
    for (const id of [1, 2, 3]) nodes.set(id, await open(id));
    const leader = await leaderOf();
    const follower = [...nodes.values()].find((n) => n !== leader)!;
    const [l, f] = [leader.host.id, follower.host.id];
    await leader.execute({ type: "kv.put", key: enc("warm"), value: enc("1") });
    // The follower gets the change's entry but never hears from this leader that it is committed.
    const changeIndex = leader.host.status().lastIndex + 1;
    hub.links = { delayMs: () => 0, drop: (from, to, m) => from === l && to === f && m.commit >= changeIndex && (m.type === MessageType.App || m.type === MessageType.Heartbeat) };
    const change = follower.changeMembership({ type: ConfChangeType.AddLearner, nodeId: 9, context: enc("n9") });
    for (let i = 0; i < 200 && follower.host.status().lastIndex < changeIndex; i++) await new Promise((r) => setTimeout(r, 5));
    expect(follower.host.status().lastIndex).toBeGreaterThanOrEqual(changeIndex);
    leader.host.transferLeadership(f);
    for (let i = 0; i < 200 && follower.host.status().role !== "leader"; i++) await new Promise((r) => setTimeout(r, 5));
    expect(follower.host.status().role).toBe("leader");
    hub.links = undefined;
    const out = await settleWithin(change, 3_000);
    expect(out).toEqual({ value: { voters: [1, 2, 3], learners: [9] } });
    expect(follower.host.status().confState.learners).toEqual([9]);
  });
});
