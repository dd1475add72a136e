// The replicated state machine: command semantics, exactly-once de-duplication, batch
// atomicity, replay after restart, determinism across replicas, snapshots and local reads.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { EntryType } from "../raft/types.ts";
import type { Entry } from "../raft/types.ts";
import { encodeEnvelope } from "./commands.ts";
import type { Command } from "./commands.ts";
import { StateError } from "./errors.ts";
import { StateMachine } from "./state-machine.ts";
import type { ApplyResult } from "./state-machine.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "trivet-state-"));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
const b = (s: string) => new TextEncoder().encode(s);
const text = (u: Uint8Array | null) => (u === null ? null : new TextDecoder().decode(u));

function cmd(index: number, command: Command, clientId = "c1", seq = index, term = 1): Entry {
  return { index, term, type: EntryType.Normal, data: encodeEnvelope({ clientId, seq, atMs: 1_000 + index, command }) };
}

const put = (k: string, v: string): Command => ({ type: "kv.put", key: b(k), value: b(v) });

function results(rs: ApplyResult[]): unknown[] {
  return rs.map((r) => (r.kind === "command" ? { index: r.index, ...r.result, duplicate: r.duplicate } : { index: r.index, kind: r.kind }));
}

describe("StateMachine apply", () => {
  it("applies kv put, delete and compare-and-swap with versions", () => {
    const sm = StateMachine.open(":memory:");
    const rs = sm.apply([
      cmd(1, put("a", "1")),
      cmd(2, put("a", "2")),
      cmd(3, { type: "kv.cas", key: b("a"), expectedVersion: 1, value: b("x") }),
      cmd(4, { type: "kv.cas", key: b("a"), expectedVersion: 2, value: b("3") }),
      cmd(5, { type: "kv.cas", key: b("new"), expectedVersion: 0, value: b("n") }),
      cmd(6, { type: "kv.delete", key: b("new") }),
      cmd(7, { type: "kv.delete", key: b("new") }),
    ]);
    expect(results(rs)).toEqual([
      { index: 1, ok: true, version: 1, duplicate: false },
      { index: 2, ok: true, version: 2, duplicate: false },
      { index: 3, ok: false, code: "version_mismatch", message: "compare-and-swap: expected version 1, found 2", currentVersion: 2, duplicate: false },
      { index: 4, ok: true, version: 3, duplicate: false },
      { index: 5, ok: true, version: 1, duplicate: false },
      { index: 6, ok: true, deleted: true, duplicate: false },
      { index: 7, ok: true, deleted: false, duplicate: false },
    ]);
    expect(sm.get(b("a"))).toEqual({ value: b("3"), version: 3, appliedIndex: 7 });
    expect(sm.get(b("new"))).toEqual({ value: null, version: 0, appliedIndex: 7 });
  });

  it("applies node upsert, heartbeat and remove; names stay unique", () => {
    const sm = StateMachine.open(":memory:");
    const rs = sm.apply([
      cmd(1, { type: "node.upsert", id: 1, name: "host-a", address: "10.0.0.1:7443", role: "voter" }),
      cmd(2, { type: "node.upsert", id: 2, name: "host-a", address: "10.0.0.2:7443", role: "learner" }),
      cmd(3, { type: "node.upsert", id: 2, name: "host-b", address: "10.0.0.2:7443", role: "learner" }),
      cmd(4, { type: "node.heartbeat", id: 2, atMs: 5000 }),
      cmd(5, { type: "node.heartbeat", id: 2, atMs: 4000 }),
      cmd(6, { type: "node.upsert", id: 2, name: "host-b", address: "10.0.0.9:7443", role: "voter" }),
      cmd(7, { type: "node.heartbeat", id: 9, atMs: 1 }),
      cmd(8, { type: "node.remove", id: 1 }),
    ]);
    expect(rs.map((r) => r.kind === "command" && (r.result.ok || r.result.code))).toEqual([true, "name_taken", true, true, true, true, "not_found", true]);
    expect(sm.nodes()).toEqual([{ id: 2, name: "host-b", address: "10.0.0.9:7443", role: "voter", addedIndex: 3, heartbeatAtMs: 5000 }]);
  });

  it("de-duplicates a retried proposal by (clientId, seq), returning the first result", () => {
    const sm = StateMachine.open(":memory:");
    sm.apply([cmd(1, put("k", "first"), "api", 1), cmd(2, put("k", "other"), "api2", 1)]);
    const [retry] = sm.apply([cmd(3, put("k", "first"), "api", 1)]);
    expect(retry).toMatchObject({ kind: "command", duplicate: true, result: { ok: true, version: 1 } });
    expect(sm.get(b("k"))).toMatchObject({ value: b("other"), version: 2, appliedIndex: 3 });
  });

  it("refuses a retry older than the per-client window instead of executing it twice", () => {
    const sm = StateMachine.open(":memory:");
    const entries = Array.from({ length: 1100 }, (_, k) => cmd(k + 1, put(`k${k}`, "v"), "busy", k + 1));
    sm.apply(entries);
    const [old] = sm.apply([cmd(1101, put("k0", "again"), "busy", 2)]);
    expect(old).toMatchObject({ kind: "command", result: { ok: false, code: "request_too_old" } });
    expect(sm.get(b("k0")).version).toBe(1);
  });

  it("forgets de-duplication records of clients silent past the retention, at fixed log positions", () => {
    const sm = StateMachine.open(":memory:");
    const dayMs = 24 * 60 * 60 * 1000;
    const at = (index: number, clientId: string, seq: number, atMs: number, command: Command): Entry =>
      ({ index, term: 1, type: EntryType.Normal, data: encodeEnvelope({ clientId, seq, atMs, command }) });
    sm.apply([at(1, "gone", 1, 0, put("g", "1")), at(2, "recent", 1, dayMs, put("r", "1"))]);
    const filler = Array.from({ length: 1021 }, (_, k) => at(k + 3, "busy", k + 1, dayMs + 1000, put("f", "x")));
    sm.apply(filler);
    // Index 1024 is a pruning position: records older than atMs - 24 h go.
    sm.apply([at(1024, "busy", 5000, dayMs + 2000, put("f", "y"))]);
    const [gone, recent] = sm.apply([at(1025, "gone", 1, dayMs + 3000, put("g", "1")), at(1026, "recent", 1, dayMs + 3000, put("r", "1"))]);
    expect(gone).toMatchObject({ kind: "command", duplicate: false, result: { ok: true, version: 2 } });
    expect(recent).toMatchObject({ kind: "command", duplicate: true, result: { ok: true, version: 1 } });
  });

  it("skips entries at or below the applied index, no-ops empty entries, records conf state", () => {
    const sm = StateMachine.open(":memory:");
    sm.apply([cmd(1, put("a", "1")), { index: 2, term: 2, type: EntryType.Normal, data: new Uint8Array(0) }]);
    const cs = { voters: [1, 2, 3], learners: [4] };
    const rs = sm.apply([cmd(1, put("a", "X")), { index: 3, term: 2, type: EntryType.ConfChange, data: new Uint8Array([1]) }], { confState: cs });
    expect(results(rs)).toEqual([{ index: 1, kind: "skipped" }, { index: 3, kind: "conf_change" }]);
    expect([sm.appliedIndex, sm.appliedTerm, text(sm.get(b("a")).value)]).toEqual([3, 2, "1"]);
    expect(sm.confState()).toEqual(cs);
  });

  it("applies undecodable data as a rejected no-op", () => {
    const sm = StateMachine.open(":memory:");
    const [r] = sm.apply([{ index: 1, term: 1, type: EntryType.Normal, data: new Uint8Array([1, 1, 0]) }]);
    expect(r).toMatchObject({ kind: "rejected", index: 1 });
    expect(sm.appliedIndex).toBe(1);
  });

  it("applies a batch atomically: a gap part-way leaves nothing of the batch", () => {
    const sm = StateMachine.open(":memory:");
    sm.apply([cmd(1, put("a", "1"))]);
    let err: unknown;
    try {
      sm.apply([cmd(2, put("a", "2")), cmd(4, put("b", "4"))]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StateError);
    expect((err as StateError).code).toBe("apply_out_of_order");
    expect([sm.appliedIndex, sm.get(b("a")).version]).toEqual([1, 1]);
  });

  it("replays from the meta applied index after a restart (file-backed)", () => {
    const file = path.join(fs.mkdtempSync(path.join(root, "r-")), "state.db");
    const log = Array.from({ length: 15 }, (_, k) => cmd(k + 1, put(`k${k % 4}`, `v${k}`)));
    let sm = StateMachine.open(file);
    sm.apply(log.slice(0, 10));
    sm.close();
    sm = StateMachine.open(file);
    expect(sm.appliedIndex).toBe(10);
    const rs = sm.apply(log);
    expect(rs.filter((r) => r.kind === "skipped")).toHaveLength(10);
    expect(sm.get(b("k2"))).toEqual({ value: b("v14"), version: 4, appliedIndex: 15 });
    sm.close();
  });
});

/** Deterministic PRNG for the random command stream (mulberry32). */
function rng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) % n);
  };
}

function randomLog(seed: number, count: number): Entry[] {
  const r = rng(seed);
  const out: Entry[] = [];
  const seqs = [0, 0, 0];
  for (let i = 1; i <= count; i++) {
    const client = r(3);
    const retry = seqs[client]! > 0 && r(10) === 0;
    const seq = retry ? 1 + r(seqs[client]!) : ++seqs[client]!;
    const key = b(`key/${r(40)}`);
    const choice = r(8);
    const c: Command | null =
      choice === 0 ? null
        : choice <= 3 ? { type: "kv.put", key, value: new Uint8Array(1 + r(300)).fill(r(256)) }
          : choice === 4 ? { type: "kv.delete", key }
            : choice === 5 ? { type: "kv.cas", key, expectedVersion: r(4), value: b(`cas${i}`) }
              : choice === 6 ? { type: "node.upsert", id: 1 + r(5), name: `host-${r(6)}`, address: `10.0.0.${r(9)}:7443`, role: r(2) ? "voter" : "learner" }
                : { type: "node.heartbeat", id: 1 + r(5), atMs: 10_000 + i };
    out.push(c ? cmd(i, c, `client-${client}`, seq, 1 + (i >> 8)) : { index: i, term: 1 + (i >> 8), type: EntryType.Normal, data: new Uint8Array(0) });
  }
  return out;
}

function applyInBatches(sm: StateMachine, log: Entry[], seed: number, batchMax: number): void {
  const r = rng(seed);
  for (let k = 0; k < log.length;) {
    const n = 1 + r(batchMax);
    sm.apply(log.slice(k, k + n));
    k += n;
  }
}

describe("StateMachine determinism", () => {
  it("two replicas applying the same stream in different batches end byte-identical", () => {
    const log = randomLog(42, 3000);
    const a = StateMachine.open(":memory:");
    const c = StateMachine.open(":memory:");
    applyInBatches(a, log, 1, 7);
    applyInBatches(c, log, 2, 300);
    const file = StateMachine.open(path.join(fs.mkdtempSync(path.join(root, "d-")), "state.db"));
    applyInBatches(file, log, 3, 64);
    expect(a.appliedIndex).toBe(3000);
    expect(a.checksum()).toBe(c.checksum());
    expect(file.checksum()).toBe(a.checksum());
    expect(Buffer.from(a.snapshot().data).equals(Buffer.from(c.snapshot().data))).toBe(true);
    const other = StateMachine.open(":memory:");
    applyInBatches(other, randomLog(43, 3000), 1, 7);
    expect(other.checksum()).not.toBe(a.checksum());
    file.close();
  });
});

describe("StateMachine snapshots", () => {
  it("restores an image into a fresh, a behind and an ahead machine (memory)", () => {
    const log = randomLog(7, 600);
    const src = StateMachine.open(":memory:");
    src.apply(log.slice(0, 300));
    const snap = src.snapshot();
    const sum300 = src.checksum();
    expect([snap.index, snap.term]).toEqual([300, log[299]!.term]);
    const fresh = StateMachine.open(":memory:");
    const behind = StateMachine.open(":memory:");
    behind.apply(log.slice(0, 100));
    const ahead = StateMachine.open(":memory:");
    ahead.apply(log);
    for (const sm of [fresh, behind, ahead]) {
      sm.restore(snap);
      expect([sm.appliedIndex, sm.checksum()]).toEqual([300, sum300]);
      sm.apply(log.slice(300));
    }
    src.apply(log.slice(300));
    for (const sm of [fresh, behind, ahead]) expect(sm.checksum()).toBe(src.checksum());
  });

  it("round-trips through a file-backed machine, WAL content included, and survives reopen", () => {
    const dir = fs.mkdtempSync(path.join(root, "s-"));
    const log = randomLog(9, 400);
    const src = StateMachine.open(path.join(dir, "src.db"));
    src.apply(log.slice(0, 250));
    const snap = src.snapshot();
    const dst = StateMachine.open(path.join(dir, "dst.db"));
    dst.apply(log.slice(0, 399));
    dst.restore(snap);
    expect([dst.appliedIndex, dst.checksum()]).toEqual([250, src.checksum()]);
    dst.apply(log.slice(250, 300));
    dst.close();
    const again = StateMachine.open(path.join(dir, "dst.db"));
    src.apply(log.slice(250, 300));
    expect([again.appliedIndex, again.checksum()]).toEqual([300, src.checksum()]);
    expect(fs.existsSync(path.join(dir, "dst.db.restore-tmp"))).toBe(false);
    again.close();
    src.close();
  });

  it("refuses an image whose applied index does not match, or that is not a database", () => {
    const sm = StateMachine.open(":memory:");
    sm.apply(randomLog(3, 20));
    const snap = sm.snapshot();
    const code = (f: () => void) => {
      try {
        f();
      } catch (err) {
        return err instanceof StateError ? err.code : String(err);
      }
      return "restored";
    };
    const target = StateMachine.open(":memory:");
    expect(code(() => target.restore({ ...snap, index: 21 }))).toBe("snapshot_invalid");
    expect(code(() => target.restore({ ...snap, data: new Uint8Array(4096).fill(7) }))).toBe("snapshot_invalid");
    expect(target.appliedIndex).toBe(0);
  });
});

describe("StateMachine reads", () => {
  it("ranges over a prefix in key order with a bounded limit", () => {
    const sm = StateMachine.open(":memory:");
    const keys = ["vm/a", "vm/b", "vm/c", "vm0", "vn", "v"];
    sm.apply(keys.map((k, i) => cmd(i + 1, put(k, k.toUpperCase()))));
    sm.apply([cmd(7, { type: "kv.put", key: new Uint8Array([0xff, 0xff]), value: b("hi") }), cmd(8, { type: "kv.put", key: new Uint8Array([0xff]), value: b("h") })]);
    const got = sm.range(b("vm/"), 10);
    expect(got.items.map((i) => text(i.key))).toEqual(["vm/a", "vm/b", "vm/c"]);
    expect(got.appliedIndex).toBe(8);
    expect(sm.range(b("vm"), 2).items.map((i) => text(i.value))).toEqual(["VM/A", "VM/B"]);
    expect(sm.range(new Uint8Array([0xff]), 10).items.map((i) => [...i.key])).toEqual([[0xff], [0xff, 0xff]]);
    expect(sm.range(new Uint8Array(0), 1000).items).toHaveLength(8);
    expect(() => sm.range(b("vm"), 1001)).toThrow(/rangeRowsMax/);
    expect(() => sm.range(b("vm"), 0)).toThrow(StateError);
  });
});

describe("StateMachine apply throughput (file-backed, WAL, synchronous = NORMAL)", () => {
  it("measures entries per second for batches of 1, 64 and 512 kv.put of 256-byte values", () => {
    const dir = fs.mkdtempSync(path.join(root, "bench-"));
    const value = new Uint8Array(256).fill(0x5a);
    const figures: string[] = [];
    for (const [batch, total] of [[1, 3000], [64, 32_768], [512, 65_536]] as const) {
      const sm = StateMachine.open(path.join(dir, `b${batch}.db`));
      const log = Array.from({ length: total }, (_, k) => cmd(k + 1, { type: "kv.put", key: b(`vm/${k % 5000}`), value }, "bench", k + 1));
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      for (let k = 0; k < total; k += batch) sm.apply(log.slice(k, k + batch));
      const cpu = process.cpuUsage(cpu0);
      const wallPerSecond = total / ((performance.now() - t0) / 1000);
      // CPU time as well as wall time: on a shared 2-core machine wall time mostly measures the neighbours.
      const cpuPerSecond = total / ((cpu.user + cpu.system) / 1e6);
      figures.push(`batch ${batch}: ${Math.round(wallPerSecond)} entries/s wall, ${Math.round(cpuPerSecond)} entries/s of CPU`);
      expect(sm.appliedIndex).toBe(total);
      sm.close();
    }
    console.log(`StateMachine apply: ${figures.join(", ")}`);
  }, 120_000);
});
