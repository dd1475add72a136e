// Three real `trivet raft serve` processes on loopback: writes through the leader and through
// followers, kill -9 of the leader in the middle of the load, a new leader, the old one
// restarted. Every acknowledged write must still be there on every node, the replicas must be
// identical, and the whole client history must be linearizable.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KvClient } from "../../core/api/kv-service.ts";
import { checkLinearizable, HistoryRecorder, kv, kvModel, type KvInput, type KvOutput } from "../linearizability/index.ts";
import { RaftProcessCluster } from "./raft-processes.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | null) => (b ? new TextDecoder().decode(b) : null);
const nowNs = () => Number(process.hrtime.bigint());

const clientsCount = 8;
const sharedKeys = ["a", "b", "c", "d"];
const opsBeforeKill = 150;
const opsTotal = 500;
const loadTimeMaxMs = 90_000;
const attemptsMax = 6;
const attemptDeadlineMs = 4_000;

describe("a three-process Raft group", () => {
  let cluster: RaftProcessCluster;
  const history = new HistoryRecorder<KvInput, KvOutput>();
  /** Unique keys whose put was acknowledged, with the value written. */
  const acknowledged = new Map<string, string>();
  let completed = 0;
  let killedLeader = 0;
  let failoverMs = 0;

  beforeAll(async () => {
    cluster = await RaftProcessCluster.start({ size: 3 });
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  /** Tries a request on the running nodes in turn, starting at `first`; the same request id on every try. */
  async function attempt<T>(first: number, call: (c: KvClient) => Promise<T>): Promise<T> {
    let lastErr: unknown;
    for (let i = 0; i < attemptsMax; i++) {
      const running = cluster.running();
      if (running.length === 0) break;
      const node = running[(first + i) % running.length]!;
      try {
        return await call(node.client);
      } catch (err) {
        lastErr = err;
        await new Promise((r) => setTimeout(r, 50 * (i + 1)));
      }
    }
    throw lastErr;
  }

  async function client(c: number, deadline: number): Promise<void> {
    let seq = 0;
    for (let i = 0; completed < opsTotal && Date.now() < deadline; i++) {
      const key = sharedKeys[(c + i) % sharedKeys.length]!;
      const kind = i % 4;
      const request = { clientId: `client-${c}`, seq: ++seq };
      if (kind === 3) {
        const h = history.invoke(c, kv.get(key), nowNs());
        try {
          const r = await attempt(c + i, (cl) => cl.get(enc(key), true, attemptDeadlineMs));
          history.ok(h, kv.getOk(dec(r.value), r.version), nowNs());
        } catch {
          history.info(h);
        }
      } else {
        // Shared keys test linearizability; a unique key per put tests "nothing acknowledged is lost".
        const value = `c${c}-${i}`;
        const h = history.invoke(c, kv.put(key, value), nowNs());
        try {
          const r = await attempt(c + i, (cl) => cl.put(enc(key), enc(value), request, attemptDeadlineMs));
          history.ok(h, kv.putOk(r.ok ? r.version : undefined), nowNs());
        } catch {
          history.info(h);
          completed++;
          continue;
        }
        // Not part of the checked history: an unacknowledged unique write is simply not counted.
        const unique = `u-${value}`;
        try {
          await attempt(c + i + 1, (cl) => cl.put(enc(unique), enc(value), { clientId: `client-${c}`, seq: ++seq }, attemptDeadlineMs));
          acknowledged.set(unique, value);
        } catch {
          // outcome unknown: neither required nor forbidden to be present
        }
      }
      completed++;
    }
  }

  it("keeps every acknowledged write through kill -9 of the leader, and stays linearizable", async () => {
    const deadline = Date.now() + loadTimeMaxMs;
    const killer = (async () => {
      while (completed < opsBeforeKill && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      killedLeader = await cluster.waitForLeader();
      const t0 = Date.now();
      await cluster.kill(killedLeader);
      await cluster.waitForLeader(20_000, killedLeader);
      failoverMs = Date.now() - t0;
    })();
    await Promise.all([...Array.from({ length: clientsCount }, (_, c) => client(c, deadline)), killer]);
    expect(completed).toBeGreaterThanOrEqual(opsTotal);
    expect(killedLeader).toBeGreaterThan(0);
    console.log(`three-process test: ${completed} ops, ${acknowledged.size} unique writes acknowledged, leader ${killedLeader} killed, new leader after ${failoverMs} ms`);

    // The old leader comes back and catches up.
    await cluster.launch(killedLeader);
    const leader = cluster.nodes.get(await cluster.waitForLeader())!;
    const target = (await leader.client.status()).commit;
    const back = cluster.nodes.get(killedLeader)!;
    for (let i = 0; i < 200 && (await back.client.status()).applied < target; i++) await new Promise((r) => setTimeout(r, 100));
    expect((await back.client.status()).applied).toBeGreaterThanOrEqual(target);

    // Every acknowledged write is on every node.
    for (const n of cluster.running()) {
      for (const [key, value] of acknowledged) {
        const r = await n.client.get(enc(key), true);
        expect(dec(r.value), `node ${n.id} key ${key}`).toBe(value);
      }
    }
    // Identical replicas once every node has applied the same prefix.
    await leader.client.put(enc("fence"), enc("x"));
    const sums = await Promise.all(cluster.running().map(async (n) => {
      await n.client.get(enc("fence"), true);
      return n.client.checksum();
    }));
    const atSameIndex = sums.filter((s) => s.appliedIndex === sums[0]!.appliedIndex);
    expect(atSameIndex.length).toBe(3);
    expect(new Set(sums.map((s) => s.checksum)).size).toBe(1);

    const result = checkLinearizable(kvModel, history.history(), { timeoutMs: 60_000 });
    if (result.ok !== true) throw new Error(`history not linearizable: ${JSON.stringify(result).slice(0, 4000)}`);
  });
});
