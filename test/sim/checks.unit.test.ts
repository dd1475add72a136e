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

  it("flags two state machines applying different entries at one index", () => {
    const c = new SafetyChecker();
    c.onApply(1, entry(1, 1, "a"), []);
    c.onApply(2, entry(1, 1, "a"), []);
    expect(violationCode(() => c.onApply(3, entry(1, 2, "b"), []))).toBe("state_machine_safety");
  });

  it("flags a new leader whose log lacks a committed entry", () => {
    const c = new SafetyChecker();
    c.onApply(1, entry(1, 1, "a"), []);
    c.onApply(1, entry(2, 1, "b"), []);
    expect(violationCode(() => c.onLeader(2, 2, logOf(entry(1, 1, "a"))))).toBe("leader_completeness");
    expect(violationCode(() => c.onLeader(3, 3, logOf(entry(1, 1, "a"), entry(2, 2, "c"))))).toBe("leader_completeness");
    c.onLeader(4, 4, logOf(entry(1, 1, "a"), entry(2, 1, "b"), entry(3, 4, "")));
  });

  it("flags an entry committed after a later leader was elected without it", () => {
    const c = new SafetyChecker();
    const leaderLog = logOf(entry(1, 1, "a"), entry(2, 3, "z"));
    c.onLeader(5, 3, leaderLog);
    const leaders = [{ id: 5, term: 3, store: leaderLog }];
    c.onApply(1, entry(1, 1, "a"), leaders);
    expect(violationCode(() => c.onApply(1, entry(2, 2, "b"), leaders))).toBe("leader_completeness");
  });

  it("flags a snapshot installed over a different committed entry", () => {
    const c = new SafetyChecker();
    c.onApply(1, entry(4, 2, "a"), []);
    c.onApplySnapshot(2, 4, 2);
    expect(violationCode(() => c.onApplySnapshot(3, 4, 3))).toBe("state_machine_safety");
  });
});
