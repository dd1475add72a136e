// SqliteLogStore beyond the shared contract: one-transaction Ready persistence, fsync settings,
// large snapshots, the cost of fsync, and crash safety under SIGKILL of a writing process.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { SqliteLogStore } from "./sqlite-storage.ts";
import { EntryType } from "./types.ts";
import type { Entry } from "./types.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "trivet-sqlite-log-"));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, "../..");

function freshDir(): string {
  return fs.mkdtempSync(path.join(root, "d-"));
}

function ents(from: number, count: number, term: number, payloadBytes = 32): Entry[] {
  return Array.from({ length: count }, (_, k) => ({
    index: from + k, term, type: EntryType.Normal, data: new Uint8Array(payloadBytes).fill((from + k) % 251),
  }));
}

describe("SqliteLogStore", () => {
  it("runs WAL with synchronous = FULL, also after a non-synced write", () => {
    const s = SqliteLogStore.open(freshDir());
    expect(s.db.pragma("journal_mode", { simple: true })).toBe("wal");
    expect(s.db.pragma("synchronous", { simple: true })).toBe(2);
    s.append(ents(1, 3, 1), false);
    expect(s.db.pragma("synchronous", { simple: true })).toBe(2);
    s.close();
  });

  it("persists a Ready atomically: a failure part-way leaves neither entries nor hard state", () => {
    const dir = freshDir();
    const s = SqliteLogStore.open(dir);
    s.persistReady({ entries: ents(1, 5, 1), hardState: { term: 1, vote: 1, commit: 2 } });
    s.db.exec("CREATE TRIGGER fail_hs BEFORE INSERT ON hard_state BEGIN SELECT RAISE(ABORT, 'injected disk failure'); END");
    expect(() => s.persistReady({ entries: ents(4, 4, 2), hardState: { term: 2, vote: 3, commit: 5 } })).toThrow(/injected/);
    expect([s.lastIndex(), s.term(4), s.initialState().hardState.term]).toEqual([5, 1, 1]);
    s.db.exec("DROP TRIGGER fail_hs");
    s.close();
    const again = SqliteLogStore.open(dir);
    expect([again.lastIndex(), again.term(4), again.initialState().hardState]).toEqual([5, 1, { term: 1, vote: 1, commit: 2 }]);
    again.close();
  });

  it("persists a Ready that carries a snapshot: log reset, entries after it, commit raised", () => {
    const dir = freshDir();
    const s = SqliteLogStore.open(dir);
    s.persistReady({ entries: ents(1, 5, 1) });
    const cs = { voters: [1, 2, 3], learners: [] };
    s.persistReady({
      snapshot: { metadata: { index: 100, term: 3, confState: cs }, data: new Uint8Array([5]) },
      entries: ents(101, 2, 3),
      hardState: { term: 3, vote: 0, commit: 100 },
    });
    s.close();
    const again = SqliteLogStore.open(dir);
    expect([again.firstIndex(), again.lastIndex(), again.term(100), again.term(102)]).toEqual([101, 102, 3, 3]);
    expect(again.initialState()).toEqual({ hardState: { term: 3, vote: 0, commit: 100 }, confState: cs });
    again.close();
  });

  it("keeps a multi-MB snapshot and compacts to snapshotCatchUpEntries before it", () => {
    const dir = freshDir();
    const s = SqliteLogStore.open(dir, { snapshotCatchUpEntries: 10 });
    s.append(ents(1, 100, 1), true);
    const data = new Uint8Array(4 * 1024 * 1024).map((_, k) => (k * 31) % 256);
    s.createSnapshot(80, { voters: [1], learners: [] }, data);
    expect(s.firstIndex()).toBe(71);
    s.close();
    const again = SqliteLogStore.open(dir, { snapshotCatchUpEntries: 10 });
    expect(Buffer.from(again.snapshot().data).equals(Buffer.from(data))).toBe(true);
    expect([again.firstIndex(), again.lastIndex(), again.snapshot().metadata.term]).toEqual([71, 100, 1]);
    again.close();
  });

  it("records the conf state after a ConfChange and returns it at reopen", () => {
    const dir = freshDir();
    const s = SqliteLogStore.open(dir);
    s.append(ents(1, 3, 1), true);
    s.setConfState(3, { voters: [1, 2], learners: [3] });
    s.close();
    const again = SqliteLogStore.open(dir);
    expect(again.initialState().confState).toEqual({ voters: [1, 2], learners: [3] });
    again.close();
  });

  it("refuses to open a log with a gap instead of serving it", () => {
    const dir = freshDir();
    const s = SqliteLogStore.open(dir);
    s.append(ents(1, 5, 1), true);
    s.db.prepare("DELETE FROM entries WHERE log_index = 3").run();
    s.close();
    expect(() => SqliteLogStore.open(dir)).toThrow(/entry 4 found where 3 was expected/);
  });

  it("measures the cost of fsync per Ready", () => {
    const s = SqliteLogStore.open(freshDir());
    const readies = 200;
    const time = (sync: boolean, batch: number, from: number): number => {
      const t0 = performance.now();
      for (let k = 0; k < readies; k++) {
        const first = from + k * batch;
        s.persistReady({ entries: ents(first, batch, 1, 256), hardState: { term: 1, vote: 1, commit: first } }, sync);
      }
      return ((performance.now() - t0) * 1000) / readies;
    };
    const syncedUs = time(true, 1, 1);
    const unsyncedUs = time(false, 1, readies + 1);
    const batchUs = time(true, 64, 2 * readies + 1);
    console.log(`SqliteLogStore persistReady: ${syncedUs.toFixed(0)} µs synced (1 entry), ${unsyncedUs.toFixed(0)} µs unsynced (1 entry), ${batchUs.toFixed(0)} µs synced (64 × 256 B entries) per Ready`);
    expect(s.lastIndex()).toBe(2 * readies + 64 * readies);
    s.close();
  });
});

/** A child that appends batches in a loop and prints each acknowledged last index. */
function childSource(storePath: string): string {
  return `
import { SqliteLogStore } from ${JSON.stringify(storePath)};
const s = SqliteLogStore.open(process.argv[2], { snapshotCatchUpEntries: 50 });
const maxIterations = 1_000_000;
for (let n = 0; n < maxIterations; n++) {
  let last = s.lastIndex();
  // Every 7th batch rewrites the last 3 entries in a new term, exercising truncation.
  const term = Math.max(s.term(last), 1) + (n % 7 === 6 ? 1 : 0);
  const from = n % 7 === 6 ? Math.max(s.firstIndex(), last - 2) : last + 1;
  const count = 1 + (n % 13);
  const entries = [];
  for (let i = from; i < from + count; i++) {
    entries.push({ index: i, term, type: 0, data: new TextEncoder().encode(i + ":" + term + ":" + "p".repeat(i % 300)) });
  }
  last = from + count - 1;
  s.persistReady({ entries, hardState: { term, vote: 1, commit: Math.max(0, last - 5) } });
  if (n % 97 === 96) s.createSnapshot(last - 10, { voters: [1, 2, 3], learners: [] }, new Uint8Array(100_000).fill(last % 256));
  process.stdout.write(last + "\\n");
}
`;
}

function runChildUntilKilled(script: string, dir: string, minAcked: number, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", script, dir], { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] });
    let acked = 0;
    let buf = "";
    let stderr = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`crash child: no progress to ${minAcked} within ${timeoutMs} ms (acked ${acked}); stderr: ${stderr}`));
    }, timeoutMs);
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdout.on("data", (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split("\n");
      buf = lines.pop() ?? "";
      for (const l of lines) acked = Number(l);
      if (acked >= minAcked && !child.killed) child.kill("SIGKILL");
    });
    child.on("exit", (_code, signal) => {
      clearTimeout(timer);
      if (signal === "SIGKILL") resolve(acked);
      else reject(new Error(`crash child exited on its own (${signal ?? _code}); stderr: ${stderr}`));
    });
  });
}

/** A child that persists `n` Readies of 8 entries each, synced or not. */
function readyLoopSource(storePath: string): string {
  return `
import { SqliteLogStore } from ${JSON.stringify(storePath)};
const s = SqliteLogStore.open(process.argv[2]);
const n = Number(process.argv[3]);
for (let k = 0; k < n; k++) {
  const entries = Array.from({ length: 8 }, (_, j) => ({ index: k * 8 + j + 1, term: 1, type: 0, data: new Uint8Array(256) }));
  s.persistReady({ entries, hardState: { term: 1, vote: 1, commit: k * 8 } }, process.argv[4] === "sync");
}
s.close();
`;
}

const hasStrace = spawnSync("strace", ["-V"]).status === 0;

describe("SqliteLogStore group commit", () => {
  it.skipIf(!hasStrace)("issues exactly one fsync per synced Ready and none per unsynced one (strace)", () => {
    const script = path.join(root, "ready-loop.ts");
    fs.writeFileSync(script, readyLoopSource(path.join(here, "sqlite-storage.ts")));
    const readies = 40;
    const fsyncs = (n: number, mode: string): number => {
      const out = path.join(root, `strace-${n}-${mode}.txt`);
      const r = spawnSync("strace", ["-f", "-c", "-e", "trace=fsync,fdatasync", "-o", out, process.execPath, "--import", "tsx", script, freshDir(), String(n), mode], { cwd: repoRoot, timeout: 60_000 });
      expect(r.status, r.stderr.toString()).toBe(0);
      const lines = fs.readFileSync(out, "utf8").split("\n").filter((l) => /\b(fsync|fdatasync)$/.test(l.trim()));
      return lines.reduce((sum, l) => sum + Number(l.trim().split(/\s+/)[3]), 0);
    };
    const baseline = fsyncs(0, "sync");
    expect(fsyncs(readies, "sync") - baseline).toBe(readies);
    expect(fsyncs(readies, "nosync") - baseline).toBe(0);
  }, 120_000);
});

describe("SqliteLogStore crash safety", () => {
  it("reopens to a consistent prefix after SIGKILL at arbitrary points", async () => {
    const dir = freshDir();
    const script = path.join(root, "crash-child.ts");
    fs.writeFileSync(script, childSource(path.join(here, "sqlite-storage.ts")));
    const rounds = 4;
    const childTimeoutMs = 30_000;
    let target = 0;
    for (let round = 0; round < rounds; round++) {
      target += 400 + round * 137;
      const acked = await runChildUntilKilled(script, dir, target, childTimeoutMs);
      const s = SqliteLogStore.open(dir);
      const last = s.lastIndex();
      expect(last).toBeGreaterThanOrEqual(acked);
      const lo = s.firstIndex();
      let prevTerm = s.term(lo - 1);
      for (const e of s.entries(lo, last + 1, Number.MAX_SAFE_INTEGER)) {
        const [idx, term] = new TextDecoder().decode(e.data).split(":");
        expect([Number(idx), Number(term)]).toEqual([e.index, e.term]);
        expect(e.term).toBeGreaterThanOrEqual(prevTerm);
        prevTerm = e.term;
      }
      expect(s.initialState().hardState.commit).toBeLessThanOrEqual(last);
      expect(s.snapshot().metadata.index).toBeGreaterThanOrEqual(lo - 1);
      s.close();
    }
  }, 120_000);
});
