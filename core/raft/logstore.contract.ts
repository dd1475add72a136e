// The one contract every LogStore implementation passes (STYLE.md: one interface, one shared
// contract test). Semantics follow etcd's MemoryStorage: entry firstIndex()-1 is the compaction
// point (its term stays readable), reads below it are "compacted", above lastIndex() "unavailable".
import { describe, expect, it } from "vitest";
import { EntryType, RaftError } from "./types.ts";
import type { ConfState, Entry, LogStore } from "./types.ts";

export interface LogStoreContractOptions {
  /** Closes the store and opens it again from its durable state; omitted for in-memory stores. */
  reopen?: (store: LogStore) => LogStore;
}

const unlimitedBytes = Number.MAX_SAFE_INTEGER;

function ent(index: number, term: number, payload = `e${index}t${term}`): Entry {
  return { index, term, type: EntryType.Normal, data: new TextEncoder().encode(payload) };
}

function ents(from: number, to: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(ent(i, term));
  return out;
}

function summary(es: Entry[]): string[] {
  return es.map((e) => `${e.index}/${e.term}/${e.type}/${new TextDecoder().decode(e.data)}`);
}

function raftCode(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof RaftError) return err.code;
    return `non-RaftError: ${String(err)}`;
  }
  return "no error";
}

export function runLogStoreContract(name: string, makeStore: () => LogStore, options: LogStoreContractOptions = {}): void {
  describe(`LogStore contract: ${name}`, () => {
    it("starts empty: first index 1, last index 0, term(0) = 0, zero hard state", () => {
      const s = makeStore();
      expect([s.firstIndex(), s.lastIndex(), s.term(0)]).toEqual([1, 0, 0]);
      expect(s.initialState().hardState).toEqual({ term: 0, vote: 0, commit: 0 });
      expect(s.snapshot().metadata.index).toBe(0);
      expect(raftCode(() => s.term(1))).toBe("unavailable");
    });

    it("appends entries and reads them back with their terms", () => {
      const s = makeStore();
      s.append([...ents(1, 3, 1), ...ents(4, 5, 2)], true);
      expect([s.firstIndex(), s.lastIndex()]).toEqual([1, 5]);
      expect([1, 2, 3, 4, 5].map((i) => s.term(i))).toEqual([1, 1, 1, 2, 2]);
      expect(summary(s.entries(1, 6, unlimitedBytes))).toEqual(summary([...ents(1, 3, 1), ...ents(4, 5, 2)]));
      expect(summary(s.entries(2, 4, unlimitedBytes))).toEqual(summary(ents(2, 3, 1)));
      const conf: Entry = { index: 6, term: 2, type: EntryType.ConfChange, data: new Uint8Array([1, 2, 3]) };
      s.append([conf], false);
      expect(s.entries(6, 7, unlimitedBytes)).toEqual([conf]);
    });

    it("truncates a conflicting suffix before appending", () => {
      const s = makeStore();
      s.append(ents(1, 5, 1), true);
      s.append(ents(3, 4, 2), true);
      expect(s.lastIndex()).toBe(4);
      expect(summary(s.entries(1, 5, unlimitedBytes))).toEqual(summary([...ents(1, 2, 1), ...ents(3, 4, 2)]));
      expect(raftCode(() => s.term(5))).toBe("unavailable");
      s.append(ents(5, 6, 3), true);
      expect([s.lastIndex(), s.term(4), s.term(5), s.term(6)]).toEqual([6, 2, 3, 3]);
    });

    it("refuses an append that would leave a gap", () => {
      const s = makeStore();
      s.append(ents(1, 2, 1), true);
      expect(() => s.append(ents(4, 5, 1), true)).toThrow();
      expect(s.lastIndex()).toBe(2);
    });

    it("bounds entries(): compacted below, unavailable above", () => {
      const s = makeStore();
      s.append(ents(1, 6, 1), true);
      s.compact(3);
      expect(raftCode(() => s.entries(3, 5, unlimitedBytes))).toBe("compacted");
      expect(raftCode(() => s.entries(4, 8, unlimitedBytes))).toBe("unavailable");
      expect(summary(s.entries(4, 7, unlimitedBytes))).toEqual(summary(ents(4, 6, 1)));
    });

    it("honours maxBytes with a prefix, and returns at least one entry", () => {
      const s = makeStore();
      const big = Array.from({ length: 8 }, (_, k) => ent(k + 1, 1, "x".repeat(100 + k)));
      s.append(big, true);
      expect(s.entries(1, 9, 0)).toHaveLength(1);
      expect(s.entries(3, 9, 1)).toHaveLength(1);
      expect(s.entries(1, 9, unlimitedBytes)).toHaveLength(8);
      let previous = 8;
      for (let maxBytes = 2000; maxBytes >= 0; maxBytes -= 50) {
        const got = s.entries(1, 9, maxBytes);
        expect(summary(got)).toEqual(summary(big.slice(0, got.length)));
        expect(got.length).toBeLessThanOrEqual(previous);
        previous = got.length;
      }
      expect(s.entries(1, 9, 450).length).toBeLessThan(8);
    });

    it("compacts: first index moves, the compaction point's term stays readable", () => {
      const s = makeStore();
      s.append([...ents(1, 3, 1), ...ents(4, 6, 2)], true);
      s.compact(4);
      expect([s.firstIndex(), s.lastIndex(), s.term(4), s.term(5)]).toEqual([5, 6, 2, 2]);
      expect(raftCode(() => s.term(3))).toBe("compacted");
      expect(raftCode(() => s.compact(4))).toBe("compacted");
      expect(() => s.compact(7)).toThrow();
      s.append(ents(2, 3, 1), true);
      expect([s.firstIndex(), s.lastIndex()]).toEqual([5, 6]);
      s.append(ents(4, 8, 3), true);
      expect([s.firstIndex(), s.lastIndex(), s.term(5), s.term(8)]).toEqual([5, 8, 3, 3]);
    });

    it("createSnapshot records the snapshot and keeps entries after it", () => {
      const s = makeStore();
      s.append([...ents(1, 5, 1), ...ents(6, 9, 2)], true);
      const cs: ConfState = { voters: [1, 2, 3], learners: [4] };
      const data = new Uint8Array([9, 8, 7, 6]);
      const snap = s.createSnapshot(7, cs, data);
      expect(snap.metadata).toEqual({ index: 7, term: 2, confState: cs });
      const got = s.snapshot();
      expect(got.metadata).toEqual({ index: 7, term: 2, confState: cs });
      expect([...got.data]).toEqual([...data]);
      expect(s.firstIndex()).toBeLessThanOrEqual(8);
      expect(s.term(7)).toBe(2);
      expect(summary(s.entries(8, 10, unlimitedBytes))).toEqual(summary(ents(8, 9, 2)));
      expect(s.initialState().confState).toEqual(cs);
      expect(() => s.createSnapshot(6, cs, data)).toThrow(RaftError);
      s.compact(7);
      expect([s.firstIndex(), s.lastIndex()]).toEqual([8, 9]);
    });

    it("applySnapshot resets the log to start after the snapshot", () => {
      const s = makeStore();
      s.append(ents(1, 5, 1), true);
      s.setHardState({ term: 1, vote: 2, commit: 5 }, true);
      const cs: ConfState = { voters: [1, 2, 5], learners: [] };
      s.applySnapshot({ metadata: { index: 20, term: 4, confState: cs }, data: new Uint8Array([1, 2]) });
      expect([s.firstIndex(), s.lastIndex(), s.term(20)]).toEqual([21, 20, 4]);
      expect(raftCode(() => s.term(19))).toBe("compacted");
      expect(raftCode(() => s.entries(5, 6, unlimitedBytes))).toBe("compacted");
      expect(s.snapshot().metadata).toEqual({ index: 20, term: 4, confState: cs });
      expect([...s.snapshot().data]).toEqual([1, 2]);
      expect(s.initialState().confState).toEqual(cs);
      s.append(ents(21, 22, 4), true);
      expect(summary(s.entries(21, 23, unlimitedBytes))).toEqual(summary(ents(21, 22, 4)));
      expect(() => s.applySnapshot({ metadata: { index: 10, term: 3, confState: cs }, data: new Uint8Array(0) })).toThrow(RaftError);
      expect(s.lastIndex()).toBe(22);
    });

    it("round-trips the hard state", () => {
      const s = makeStore();
      s.setHardState({ term: 7, vote: 3, commit: 0 }, true);
      expect(s.initialState().hardState).toEqual({ term: 7, vote: 3, commit: 0 });
      s.append(ents(1, 4, 7), true);
      s.setHardState({ term: 8, vote: 0, commit: 4 }, false);
      expect(s.initialState().hardState).toEqual({ term: 8, vote: 0, commit: 4 });
    });

    if (options.reopen) {
      const reopen = options.reopen;
      it("keeps log, hard state, conf state and snapshot across a reopen", () => {
        let s = makeStore();
        s.append([...ents(1, 4, 1), ...ents(5, 9, 2)], true);
        s.setHardState({ term: 2, vote: 1, commit: 8 }, true);
        const cs: ConfState = { voters: [1, 2, 3], learners: [] };
        s.createSnapshot(6, cs, new Uint8Array([42]));
        s.append(ents(8, 10, 3), true);
        s = reopen(s);
        expect(s.initialState()).toEqual({ hardState: { term: 2, vote: 1, commit: 8 }, confState: cs });
        expect(s.lastIndex()).toBe(10);
        expect([s.term(6), s.term(7), s.term(8), s.term(10)]).toEqual([2, 2, 3, 3]);
        expect(summary(s.entries(7, 11, unlimitedBytes))).toEqual(summary([ent(7, 2), ...ents(8, 10, 3)]));
        expect(s.snapshot().metadata.index).toBe(6);
        expect([...s.snapshot().data]).toEqual([42]);
      });
    }
  });
}
