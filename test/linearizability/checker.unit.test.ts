// Tests of the linearizability checker: hand-written key/value histories whose verdict is known,
// indeterminate and failed operations, shrunk counterexamples, and randomized histories that are
// linearizable by construction (must pass) and then corrupted (must fail).

import { describe, expect, it } from "vitest";
import { performance } from "node:perf_hooks";
import { checkLinearizable, HistoryRecorder, kv, kvModel, LinearizabilityError } from "./index.ts";
import type { KvInput, KvOutput, Operation } from "./index.ts";
import { generateKvHistory } from "./generate.ts";

type Op = Operation<KvInput, KvOutput>;
/** [client, input, output | "info" | "fail" | "pending", invokeNs, returnNs] */
type Row = [string, KvInput, KvOutput | "info" | "fail" | "pending", number, number?];

function history(...rows: Row[]): Op[] {
  const rec = new HistoryRecorder<KvInput, KvOutput>();
  for (const [client, input, outcome, invokeNs, returnNs] of rows) {
    const h = rec.invoke(client, input, invokeNs);
    if (outcome === "info") rec.info(h);
    else if (outcome === "fail") rec.fail(h);
    else if (outcome !== "pending") rec.ok(h, outcome, returnNs ?? invokeNs);
  }
  return rec.history();
}

const check = (ops: Op[]) => checkLinearizable(kvModel, ops, { timeoutMs: 10_000 });
const { put, get, cas, putOk, getOk, casOk, casFail } = kv;

describe("hand-written histories", () => {
  it("accepts sequential and overlapping histories that have a valid order", () => {
    expect(check(history(["a", put("k", "1"), putOk(1), 0, 10], ["b", get("k"), getOk("1", 1), 20, 30])).ok).toBe(true);
    // A read concurrent with a write may see either value, and a later read the new one.
    const concurrent = (seen: string | null) =>
      history(["a", put("k", "1"), putOk(), 0, 100], ["b", get("k"), getOk(seen), 10, 20], ["b", get("k"), getOk("1"), 110, 120]);
    expect(check(concurrent(null)).ok).toBe(true);
    expect(check(concurrent("1")).ok).toBe(true);
    // Two concurrent puts may take effect in either order; later reads must agree on the winner.
    const twoPuts = (first: string, second: string) =>
      history(
        ["a", put("k", "x"), putOk(), 0, 50],
        ["b", put("k", "y"), putOk(), 5, 55],
        ["c", get("k"), getOk(first), 60, 70],
        ["c", get("k"), getOk(second), 80, 90],
      );
    expect(check(twoPuts("y", "y")).ok).toBe(true);
    expect(check(twoPuts("x", "x")).ok).toBe(true);
    expect(check(twoPuts("x", "y")).ok).toBe(false);
  });

  it("rejects a stale read after a completed write", () => {
    const result = check(
      history(["a", put("k", "1"), putOk(), 0, 10], ["a", put("k", "2"), putOk(), 20, 30], ["b", get("k"), getOk("1"), 40, 50]),
    );
    expect(result.ok).toBe(false);
  });

  it("rejects a lost write and a read of a value never written", () => {
    expect(check(history(["a", put("k", "1"), putOk(), 0, 10], ["b", get("k"), getOk(null), 20, 30])).ok).toBe(false);
    expect(check(history(["a", put("k", "1"), putOk(), 0, 10], ["b", get("k"), getOk("9"), 5, 30])).ok).toBe(false);
  });

  it("rejects two readers that see concurrent puts in opposite orders", () => {
    const result = check(
      history(
        ["a", put("k", "x"), putOk(), 0, 100],
        ["b", put("k", "y"), putOk(), 0, 100],
        ["c", get("k"), getOk("x"), 10, 20],
        ["c", get("k"), getOk("y"), 30, 40],
        ["d", get("k"), getOk("y"), 10, 20],
        ["d", get("k"), getOk("x"), 30, 40],
      ),
    );
    expect(result.ok).toBe(false);
  });

  it("checks versions and compare-and-set outcomes", () => {
    const base: Row[] = [["a", put("k", "1"), putOk(1), 0, 10]];
    expect(check(history(...base, ["b", cas("k", 1, "2"), casOk(), 20, 30], ["c", get("k"), getOk("2", 2), 40, 50])).ok).toBe(true);
    // Two concurrent cas from the same version cannot both succeed.
    expect(check(history(...base, ["b", cas("k", 1, "2"), casOk(), 20, 30], ["c", cas("k", 1, "3"), casOk(), 20, 30])).ok).toBe(false);
    // A cas with the current version and no concurrent write cannot fail...
    expect(check(history(...base, ["b", cas("k", 1, "2"), casFail(), 20, 30])).ok).toBe(false);
    // ...unless a concurrent write may have bumped the version first.
    expect(check(history(...base, ["b", cas("k", 1, "2"), casFail(), 20, 30], ["c", put("k", "3"), putOk(2), 15, 25])).ok).toBe(true);
    // A cas against an outdated version cannot succeed.
    expect(
      check(history(...base, ["a", put("k", "2"), putOk(2), 20, 30], ["b", cas("k", 1, "3"), casOk(), 40, 50])).ok,
    ).toBe(false);
    // Versions reported by put and get must follow the counting rule; delete resets it.
    expect(check(history(...base, ["a", put("k", "2"), putOk(3), 20, 30])).ok).toBe(false);
    expect(check(history(...base, ["a", kv.delete("k"), kv.deleteOk(), 20, 30], ["a", put("k", "2"), putOk(1), 40, 50])).ok).toBe(true);
    expect(check(history(["a", cas("k", 0, "new"), casOk(), 0, 10], ["b", get("k"), getOk("new", 1), 20, 30])).ok).toBe(true);
  });
});

describe("indeterminate and failed operations", () => {
  it("lets an indeterminate write take effect at any time after its invocation, or never", () => {
    const info = (...reads: Row[]) => check(history(["a", put("k", "1"), "info", 0], ...reads));
    expect(info(["b", get("k"), getOk(null), 10, 20]).ok).toBe(true);
    expect(info(["b", get("k"), getOk("1"), 10, 20]).ok).toBe(true);
    expect(info(["b", get("k"), getOk(null), 10, 20], ["b", get("k"), getOk("1"), 1_000, 1_010]).ok).toBe(true);
    // Once visible it cannot disappear without a delete.
    expect(info(["b", get("k"), getOk("1"), 10, 20], ["b", get("k"), getOk(null), 30, 40]).ok).toBe(false);
  });

  it("does not let an indeterminate write explain a read that finished before it was invoked", () => {
    expect(check(history(["b", get("k"), getOk("1"), 0, 10], ["a", put("k", "1"), "info", 20])).ok).toBe(false);
  });

  it("follows the effects of an indeterminate cas through later versions", () => {
    const base: Row[] = [["a", put("k", "1"), putOk(1), 0, 10], ["b", cas("k", 1, "2"), "info", 20]];
    expect(check(history(...base, ["c", put("k", "3"), putOk(3), 100, 110])).ok).toBe(true);
    expect(check(history(...base, ["c", put("k", "3"), putOk(2), 100, 110])).ok).toBe(true);
    expect(check(history(...base, ["c", put("k", "3"), putOk(4), 100, 110])).ok).toBe(false);
  });

  it("excludes failed operations, drops indeterminate reads and treats unfinished ones as indeterminate", () => {
    expect(check(history(["a", put("k", "1"), "fail", 0], ["b", get("k"), getOk("1"), 10, 20])).ok).toBe(false);
    expect(check(history(["a", put("k", "1"), "fail", 0], ["b", get("k"), getOk(null), 10, 20])).ok).toBe(true);
    expect(check(history(["a", get("k"), "info", 0], ["b", get("k"), getOk(null), 10, 20])).ok).toBe(true);
    expect(check(history(["a", put("k", "1"), "pending", 0], ["b", get("k"), getOk("1"), 10, 20])).ok).toBe(true);
  });

  it("refuses to record a completion twice or one that precedes its invocation", () => {
    const rec = new HistoryRecorder<KvInput, KvOutput>();
    const h = rec.invoke("a", put("k", "1"), 100);
    expect(() => rec.ok(h, putOk(), 50)).toThrow(expect.objectContaining({ code: "time-reversed" }));
    rec.info(h);
    expect(() => rec.ok(h, putOk(), 150)).toThrow(LinearizabilityError);
  });
});

describe("counterexamples", () => {
  it("names the failing key and shrinks to the operations that conflict", () => {
    const rows: Row[] = [["w", put("k", "a"), putOk(), 0, 10], ["o", put("other", "z"), putOk(), 0, 10]];
    for (let i = 0; i < 40; i++) rows.push([`r${i % 3}`, get("k"), getOk("a"), 20 + i * 10, 25 + i * 10]);
    rows.push(["w", put("k", "b"), putOk(), 500, 510]);
    for (let i = 0; i < 20; i++) rows.push([`r${i % 3}`, get("k"), getOk("b"), 520 + i * 10, 525 + i * 10]);
    rows.push(["stale", get("k"), getOk("a"), 800, 900_000]);
    rows.push(["stale", get("k"), getOk("a"), 1_000_000, 1_000_500]);
    const result = check(history(...rows));
    if (result.ok !== false) throw new Error(`expected a failure, got ${JSON.stringify(result)}`);
    expect(result.partition).toBe('key "k"');
    const cx = result.counterexample;
    expect(cx.partitionSize).toBe(64);
    expect(cx.operations.map((op) => `${op.clientId} ${kvModel.describeOperation(op.input, op.output)}`)).toEqual([
      'w put("k", "a") → ok',
      'w put("k", "b") → ok',
      'stale get("k") → "a"',
    ]);
    expect(cx.stuck.clientId).toBe("stale");
    expect(checkLinearizable(kvModel, cx.operations).ok).toBe(false);
    expect(result.description).toContain('not linearizable: key "k"');
    expect(result.description).toContain('client stale: get("k") → "a" [0.0008ms → 0.9ms]');
  });

  it("answers unknown when the search runs out of time", () => {
    const ops = generateKvHistory({ ...smallOptions(1), operations: 3_000, keys: 1 });
    let calls = 0;
    const nowMs = () => (calls++ === 0 ? 0 : 1e9);
    const result = checkLinearizable(kvModel, ops, { timeoutMs: 1_000, nowMs });
    expect(result.ok).toBe("unknown");
  });
});

function smallOptions(seed: number) {
  return { seed, operations: 200, keys: 3, clients: 8, gapNsMax: 10, spreadNsMax: 60, infoProbability: 0.05, failProbability: 0.03 };
}

/** Changes one definite read so that no valid order exists; returns its index, or -1. */
function corruptOneRead(ops: Op[], pick: number): number {
  const reads = ops.map((op, i) => [op, i] as const).filter(([op]) => op.input.op === "get" && op.status === "ok");
  const entry = reads[pick % reads.length];
  if (entry === undefined) return -1;
  const [read, index] = entry;
  // A value whose (unique) write began after this read returned cannot have been observed.
  const future = ops.find(
    (op) => op.input.op === "put" && op.input.key === read.input.key && op.invokeNs > read.returnNs,
  );
  const value = future?.input.op === "put" ? future.input.value : "never-written";
  ops[index] = { ...read, output: getOk(value) };
  return index;
}

describe("randomized histories", () => {
  it("accepts histories generated from a sequential execution and rejects them with one read corrupted", () => {
    for (let seed = 1; seed <= 30; seed++) {
      const ops = generateKvHistory(smallOptions(seed));
      const good = check(ops);
      expect(good.ok, `seed ${seed}: ${good.ok === false ? good.description : ""}`).toBe(true);
      const index = corruptOneRead(ops, seed * 7);
      // Any failing sub-history must contain the corrupted read, shrunk fully or not.
      const bad = checkLinearizable(kvModel, ops, { timeoutMs: 10_000, shrinkTimeoutMs: 200 });
      if (bad.ok !== false) throw new Error(`seed ${seed}: corrupted read #${ops[index]?.id} not detected`);
      const corrupted = ops[index];
      expect(bad.partition).toBe(`key "${corrupted?.input.key}"`);
      expect(bad.counterexample.operations.map((op) => op.id)).toContain(corrupted?.id);
    }
  });

  it("checks a 10k-operation history over 100 keys quickly", () => {
    const ops = generateKvHistory({
      seed: 42,
      operations: 10_000,
      keys: 100,
      clients: 50,
      gapNsMax: 1_000,
      spreadNsMax: 200_000,
      infoProbability: 0.02,
      failProbability: 0.02,
    });
    const startMs = performance.now();
    const result = check(ops);
    const elapsedMs = performance.now() - startMs;
    console.log(`linearizability: ${ops.length} operations, 100 keys checked in ${elapsedMs.toFixed(1)} ms`);
    expect(result.ok).toBe(true);
    expect(elapsedMs).toBeLessThan(30_000);
  });

  it("checks a 2k-operation history on one hot key with about ten operations in flight", () => {
    const ops = generateKvHistory({
      seed: 7,
      operations: 2_000,
      keys: 1,
      clients: 20,
      gapNsMax: 1_000,
      spreadNsMax: 2_500,
      infoProbability: 0.01,
      failProbability: 0.01,
    });
    const startMs = performance.now();
    const result = check(ops);
    const elapsedMs = performance.now() - startMs;
    console.log(`linearizability: ${ops.length} operations on one key checked in ${elapsedMs.toFixed(1)} ms`);
    expect(result.ok).toBe(true);
    expect(elapsedMs).toBeLessThan(30_000);
  });
});
