// The safety checkers must fire on the violations they exist for, and stay quiet on a history
// that respects Raft; otherwise a green simulator run would prove nothing.
import { describe, expect, it } from "vitest";
import { MemoryStorage } from "../../core/raft/memory-storage.ts";
import { EntryType, type Entry } from "../../core/raft/types.ts";
import { InvariantViolation, SafetyChecker } from "./checks.ts";

function entry(index: number, term: number, text: string): Entry {
  return { index, term, type: EntryType.Normal, data: new TextEncoder().encode(text) };
}

function logOf(...entries: Entry[]): MemoryStorage {
  const s = new MemoryStorage();
  s.append(entries, true);
  return s;
}

function violationCode(fn: () => void): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (err instanceof InvariantViolation) return err.code;
    throw err;
  }
}

describe("SafetyChecker", () => {
  it("accepts one leader per term and flags a second one", () => {
    const c = new SafetyChecker();
    const log = logOf(entry(1, 1, "a"));
    c.onLeader(1, 1, log);
    c.onLeader(1, 1, log);
    c.onLeader(2, 2, log);
    expect(violationCode(() => c.onLeader(3, 2, log))).toBe("election_safety");
  });

  it("flags two different entries at the same index and term", () => {
    const c = new SafetyChecker();
    const a = logOf(entry(1, 1, "a"));
    c.onAppend(1, [entry(1, 1, "a")], a);
    c.onAppend(2, [entry(1, 1, "a")], logOf(entry(1, 1, "a")));
    expect(violationCode(() => c.onAppend(3, [entry(1, 1, "b")], logOf(entry(1, 1, "b"))))).toBe("log_matching");
  });

  it("flags logs that agree at an index and term but not on the entry before it", () => {
    const c = new SafetyChecker();
    const first = logOf(entry(1, 1, "a"), entry(2, 3, "x"));
    c.onAppend(1, [entry(2, 3, "x")], first);
    const second = logOf(entry(1, 2, "b"), entry(2, 3, "x"));
    expect(violationCode(() => c.onAppend(2, [entry(2, 3, "x")], second))).toBe("log_matching");
  });

  it("flags two state machines applying different entries at one index, or an uncommitted one", () => {
    const c = new SafetyChecker();
    c.onCommit(1, 1, 1, logOf(entry(1, 1, "a")), [], []);
    c.onApply(1, entry(1, 1, "a"));
    c.onApply(2, entry(1, 1, "a"));
    expect(violationCode(() => c.onApply(3, entry(1, 1, "b")))).toBe("state_machine_safety");
    expect(violationCode(() => c.onApply(3, entry(1, 2, "b")))).toBe("state_machine_safety");
    expect(violationCode(() => c.onApply(1, entry(2, 1, "c")))).toBe("state_machine_safety");
  });

  it("takes the terms of a commit from the entries of the same Ready when they are not on disk yet", () => {
    const c = new SafetyChecker();
    c.onCommit(1, 2, 2, logOf(entry(1, 1, "a")), [entry(2, 2, "b")], []);
    expect(violationCode(() => c.onApply(1, entry(2, 1, "x")))).toBe("state_machine_safety");
    c.onApply(1, entry(2, 2, "b"));
  });

  it("flags a leader of a later term whose log lacks a committed entry", () => {
    const c = new SafetyChecker();
    c.onCommit(1, 1, 2, logOf(entry(1, 1, "a"), entry(2, 1, "b")), [], []);
    expect(violationCode(() => c.onLeader(2, 2, logOf(entry(1, 1, "a"))))).toBe("leader_completeness");
    expect(violationCode(() => c.onLeader(3, 3, logOf(entry(1, 1, "a"), entry(2, 2, "c"))))).toBe("leader_completeness");
    c.onLeader(4, 4, logOf(entry(1, 1, "a"), entry(2, 1, "b"), entry(3, 4, "")));
  });

  it("does not demand from a stale leader what was committed in a later term", () => {
    const c = new SafetyChecker();
    c.onCommit(2, 5, 2, logOf(entry(1, 1, "a"), entry(2, 5, "b")), [], []);
    c.onLeader(4, 4, logOf(entry(1, 1, "a")));
  });

  it("flags an entry committed after a later leader was elected without it", () => {
    const c = new SafetyChecker();
    const leaderLog = logOf(entry(1, 1, "a"), entry(2, 3, "z"));
    c.onLeader(5, 3, leaderLog);
    const leaders = [{ id: 5, term: 3, store: leaderLog }];
    c.onCommit(1, 1, 1, logOf(entry(1, 1, "a")), [], leaders);
    expect(violationCode(() => c.onCommit(1, 2, 2, logOf(entry(1, 1, "a"), entry(2, 2, "b")), [], leaders))).toBe("leader_completeness");
  });

  it("flags a snapshot installed over a different committed entry", () => {
    const c = new SafetyChecker();
    c.onCommit(1, 2, 4, logOf(entry(1, 1, "a"), entry(2, 1, "b"), entry(3, 2, "c"), entry(4, 2, "d")), [], []);
    c.onApplySnapshot(2, 4, 2);
    expect(violationCode(() => c.onApplySnapshot(3, 4, 3))).toBe("state_machine_safety");
  });
});
