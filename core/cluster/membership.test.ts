import { describe, expect, it } from "vitest";
import { learnerToPromote, roleUpdates, targetVoters } from "./membership.ts";

describe("membership policy", () => {
  it("aims at an odd number of voters, at most five", () => {
    expect([1, 2, 3, 4, 5, 6, 9].map(targetVoters)).toEqual([1, 1, 3, 3, 5, 5, 5]);
  });

  it("promotes the most caught-up learner only while voters are below target", () => {
    const progress = new Map([[1, { match: 100 }], [2, { match: 95 }], [3, { match: 99 }]]);
    const view = { role: "leader", lastIndex: 100, confState: { voters: [1], learners: [2, 3] }, progress };
    expect(learnerToPromote(view, 10)).toBe(3);
    expect(learnerToPromote({ ...view, confState: { voters: [1, 3], learners: [2] } }, 10)).toBe(2);
    expect(learnerToPromote({ ...view, confState: { voters: [1, 2, 3], learners: [] } }, 10)).toBeUndefined();
  });

  it("waits for a learner that lags and never acts on a follower", () => {
    const progress = new Map([[1, { match: 5000 }], [2, { match: 10 }], [3, { match: 20 }]]);
    const view = { role: "leader", lastIndex: 5000, confState: { voters: [1], learners: [2, 3] }, progress };
    expect(learnerToPromote(view, 1000)).toBeUndefined();
    expect(learnerToPromote({ ...view, role: "follower" }, 1_000_000)).toBeUndefined();
    // Two members: one voter is the target, the learner stays a learner.
    expect(learnerToPromote({ ...view, confState: { voters: [1], learners: [2] } }, 1_000_000)).toBeUndefined();
  });

  it("never promotes a learner that has not answered (no match, or still probing)", () => {
    const base = { role: "leader", lastIndex: 40, confState: { voters: [1], learners: [2, 3] } };
    expect(learnerToPromote({ ...base, progress: new Map([[2, { match: 0, state: "probe" }], [3, { match: 0, state: "snapshot" }]]) }, 1000)).toBeUndefined();
    expect(learnerToPromote({ ...base, progress: new Map([[2, { match: 39, state: "probe" }], [3, { match: 38, state: "replicate" }]]) }, 1000)).toBe(3);
  });
});

describe("recorded roles", () => {
  const recorded = [{ nodeId: 1, role: "voter" }, { nodeId: 2, role: "learner" }, { nodeId: 3, role: "learner" }, { nodeId: 4, role: "learner" }];

  it("records a promotion and a demotion the leader sees in the configuration", () => {
    const view = { role: "leader", confState: { voters: [1, 2], learners: [3] } };
    expect(roleUpdates(view, recorded)).toEqual([{ nodeId: 2, role: "voter" }]);
    expect(roleUpdates({ role: "leader", confState: { voters: [2, 3], learners: [1] } }, recorded)).toEqual([
      { nodeId: 1, role: "learner" },
      { nodeId: 2, role: "voter" },
      { nodeId: 3, role: "voter" },
    ]);
  });

  it("leaves alone members Raft does not name (joining or leaving) and does nothing on a follower", () => {
    expect(roleUpdates({ role: "leader", confState: { voters: [1], learners: [2, 3] } }, recorded)).toEqual([]);
    expect(roleUpdates({ role: "follower", confState: { voters: [1, 2, 3], learners: [] } }, recorded)).toEqual([]);
  });
});
