// Unit tests of the raft log: stable + unstable parts, conflicts, commit rules, size bounds.
import { describe, expect, it } from "vitest";
import { RaftLog } from "./log.ts";
import { MemoryStorage } from "./memory-storage.ts";
import { EntryType, RaftError, type Entry } from "./types.ts";

function e(index: number, term: number, bytes = 0): Entry {
  return { index, term, type: EntryType.Normal, data: new Uint8Array(bytes) };
}

/** A log whose storage holds `stable` (term per index from 1) and whose unstable part holds `unstable`. */
function makeLog(stable: number[], unstable: number[] = []): RaftLog {
  const st = new MemoryStorage();
  st.append(stable.map((t, i) => e(i + 1, t)), true);
  const log = new RaftLog(st);
  if (unstable.length > 0) log.append(unstable.map((t, i) => e(stable.length + i + 1, t)));
  return log;
}

const terms = (ents: Entry[]) => ents.map((x) => `${x.term}/${x.index}`);

describe("RaftLog", () => {
  it("reads terms and entries across the stable/unstable boundary", () => {
    const log = makeLog([1, 1, 2], [2, 3]);
    expect([log.firstIndex(), log.lastIndex(), log.lastTerm()]).toEqual([1, 5, 3]);
    expect([log.term(0), log.term(3), log.term(4), log.term(5)]).toEqual([0, 2, 2, 3]);
    expect(terms(log.entries(2, Infinity))).toEqual(["1/2", "2/3", "2/4", "3/5"]);
    expect(log.termOrUndefined(6)).toBeUndefined();
    expect(() => log.term(6)).toThrow(RaftError);
  });

  it("findConflict: 0 when all entries match, else the first mismatching or new index", () => {
    const log = makeLog([1, 2, 3]);
    expect(log.findConflict([e(1, 1), e(2, 2)])).toBe(0);
    expect(log.findConflict([e(2, 2), e(3, 3), e(4, 4)])).toBe(4);
    expect(log.findConflict([e(2, 2), e(3, 4)])).toBe(3);
  });

  it("maybeAppend rejects a mismatching previous entry and truncates only a conflicting suffix", () => {
    const log = makeLog([1, 2, 3]);
    expect(log.maybeAppend(3, 2, 3, [e(4, 4)])).toBeUndefined();
    // Entries that are already present (a duplicate/reordered App) must not truncate the log.
    expect(log.maybeAppend(1, 1, 0, [e(2, 2)])).toBe(2);
    expect(log.lastIndex()).toBe(3);
    expect(log.maybeAppend(1, 1, 2, [e(2, 2), e(3, 4), e(4, 4)])).toBe(4);
    expect(terms(log.entries(1, Infinity))).toEqual(["1/1", "2/2", "4/3", "4/4"]);
    expect(log.committed).toBe(2);
  });

  it("maybeAppend commits at most the last new entry, never beyond what the leader sent", () => {
    const log = makeLog([1, 1, 1, 1]);
    expect(log.maybeAppend(1, 1, 10, [e(2, 1)])).toBe(2);
    expect(log.committed).toBe(2);
  });

  it("refuses to overwrite a committed entry", () => {
    const log = makeLog([1, 1, 1]);
    log.commitTo(3);
    expect(() => log.maybeAppend(1, 1, 3, [e(2, 2)])).toThrow(/committed/);
  });

  it("maybeCommit only commits an index whose entry is from the given (current) term", () => {
    const log = makeLog([1, 2, 2]);
    expect(log.maybeCommit(3, 3)).toBe(false);
    expect(log.committed).toBe(0);
    expect(log.maybeCommit(3, 2)).toBe(true);
    expect(log.committed).toBe(3);
    expect(log.maybeCommit(2, 2)).toBe(false); // never goes back
  });

  it("findConflictByTerm skips whole terms for fast back-off", () => {
    const log = makeLog([1, 1, 2, 2, 2, 5, 5]);
    expect(log.findConflictByTerm(7, 4)).toEqual({ index: 5, term: 2 });
    expect(log.findConflictByTerm(7, 5)).toEqual({ index: 7, term: 5 });
    expect(log.findConflictByTerm(4, 1)).toEqual({ index: 2, term: 1 });
    expect(log.findConflictByTerm(2, 0)).toEqual({ index: 0, term: 0 });
  });

  it("isUpToDate compares last term first, then last index (§5.4.1)", () => {
    const log = makeLog([1, 2, 2]);
    expect(log.isUpToDate(1, 3)).toBe(true);
    expect(log.isUpToDate(3, 2)).toBe(true);
    expect(log.isUpToDate(2, 2)).toBe(false);
    expect(log.isUpToDate(10, 1)).toBe(false);
  });

  it("hands out committed entries once, bounded by bytes but at least one", () => {
    const log = makeLog([], [1, 1, 1, 1]);
    for (let i = 1; i <= 4; i++) log.unstable.entries[i - 1]!.data = new Uint8Array(100);
    log.commitTo(4);
    const first = log.nextCommittedEnts(150); // 100 + 16 overhead fits once
    expect(terms(first)).toEqual(["1/1"]);
    log.acceptApplying(1);
    expect(terms(log.nextCommittedEnts(1))).toEqual(["1/2"]);
    expect(terms(log.nextCommittedEnts(10_000))).toEqual(["1/2", "1/3", "1/4"]);
    log.acceptApplying(4);
    expect(log.hasNextCommittedEnts()).toBe(false);
    log.appliedTo(4);
    expect(log.applied).toBe(4);
  });

  it("stableTo drops persisted entries unless they were overwritten meanwhile", () => {
    const log = makeLog([1], [1, 1]);
    log.append([e(3, 2)]); // overwrite index 3 before the driver persisted 1/3
    log.stableTo(3, 1);
    expect(log.unstable.offset).toBe(2);
    log.stableTo(3, 2);
    expect(log.unstable.offset).toBe(4);
    expect(log.stableLastIndex()).toBe(3);
  });

  it("a restored snapshot replaces the log and hides committed entries until persisted", () => {
    const log = makeLog([1, 1]);
    log.restore({ metadata: { index: 10, term: 3, confState: { voters: [1], learners: [] } }, data: new Uint8Array(0) });
    expect([log.firstIndex(), log.lastIndex(), log.committed, log.term(10)]).toEqual([11, 10, 10, 3]);
    expect(log.hasNextCommittedEnts()).toBe(false);
    expect(() => log.entries(5, Infinity)).toThrow(RaftError);
  });

  it("reports compacted entries with the stable error code", () => {
    const st = new MemoryStorage();
    st.append([e(1, 1), e(2, 1), e(3, 1)], true);
    st.createSnapshot(2, { voters: [1], learners: [] }, new Uint8Array(0));
    st.compact(2);
    const log = new RaftLog(st);
    expect(log.term(2)).toBe(1);
    try {
      log.entries(1, Infinity);
      expect.unreachable();
    } catch (err) {
      expect((err as RaftError).code).toBe("compacted");
    }
  });
});
