// The simulated disk must lose exactly what a real one loses: unsynced writes on a crash, the
// tail of a torn append, and — when told to lie — writes it claimed to have synced.
import { describe, expect, it } from "vitest";
import { EntryType, type Entry } from "../../core/raft/types.ts";
import { SimDisk } from "./disk.ts";
import { SimRand } from "./rng.ts";

const ents = (from: number, to: number, term: number): Entry[] =>
  Array.from({ length: to - from + 1 }, (_, i) => ({ index: from + i, term, type: EntryType.Normal, data: new Uint8Array([from + i]) }));

function disk(syncLieRate = 0): SimDisk {
  return new SimDisk(new SimRand(1), { keepEntries: 2, syncLieRate });
}

describe("SimDisk", () => {
  it("keeps synced writes and loses unsynced ones on a crash", () => {
    const d = disk();
    d.append(ents(1, 3, 1), true);
    d.setHardState({ term: 1, vote: 2, commit: 1 }, true);
    d.setHardState({ term: 1, vote: 2, commit: 3 }, false);
    d.append(ents(4, 5, 1), false);
    expect(d.lastIndex()).toBe(5);
    d.crash();
    expect(d.lastIndex()).toBe(3);
    expect(d.initialState().hardState).toEqual({ term: 1, vote: 2, commit: 1 });
  });

  it("makes earlier unsynced writes durable with the next sync", () => {
    const d = disk();
    d.setHardState({ term: 2, vote: 0, commit: 0 }, false);
    d.append(ents(1, 2, 2), true);
    d.crash();
    expect(d.initialState().hardState.term).toBe(2);
    expect(d.lastIndex()).toBe(2);
  });

  it("keeps only the written prefix of a torn append, whole entries only", () => {
    const d = disk();
    d.append(ents(1, 2, 1), true);
    d.appendTorn(ents(3, 6, 2), 2);
    d.crash();
    expect(d.readableEntries().map((e) => [e.index, e.term])).toEqual([[1, 1], [2, 1], [3, 2], [4, 2]]);
  });

  it("rebuilds snapshot and compacted log exactly after a crash", () => {
    const d = disk();
    d.append(ents(1, 10, 1), true);
    d.createSnapshot(8, { voters: [1, 2, 3], learners: [] }, new Uint8Array([42]));
    d.setHardState({ term: 1, vote: 1, commit: 10 }, true);
    const before = { first: d.firstIndex(), last: d.lastIndex(), snap: d.snapshot(), term6: d.term(6) };
    d.crash();
    expect({ first: d.firstIndex(), last: d.lastIndex(), snap: d.snapshot(), term6: d.term(6) }).toEqual(before);
    expect(d.readableEntries()).toEqual(ents(7, 10, 1));
  });

  it("loses acknowledged writes when it lies about fsync", () => {
    const d = disk(1);
    d.append(ents(1, 3, 1), true);
    d.crash();
    expect(d.lastIndex()).toBe(0);
  });
});
