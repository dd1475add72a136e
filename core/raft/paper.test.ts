// Tests tied to sentences of the Raft paper (Ongaro & Ousterhout, extended version) and of the
// thesis for pre-vote and check-quorum. Each test quotes the rule it checks.
import { describe, expect, it } from "vitest";
import { TestNet, bytes } from "./test-net.ts";
import { MessageType, type Message } from "./types.ts";

const elect = (net: TestNet, id: number) => {
  net.get(id).campaign();
  net.stabilize();
  expect(net.get(id).status().role).toBe("leader");
};

const msgsOf = (net: TestNet, type: MessageType) => net.sent.filter((m: Message) => m.type === type);

describe("§5.1 terms", () => {
  it("'If one server's current term is smaller than the other's, then it updates its current term to the larger value. If a candidate or leader discovers that its term is out of date, it immediately reverts to follower state.'", () => {
    const net = new TestNet([1, 2, 3]);
    elect(net, 1);
    net.filter = (m) => m.to !== 1 && m.from !== 1;
    elect(net, 2);
    expect(net.get(2).status().term).toBe(3);
    net.filter = () => true;
    net.get(2).tick(); // the new leader's heartbeat reaches the old leader
    net.stabilize();
    expect(net.get(1).status()).toMatchObject({ role: "follower", term: 3, leader: 2 });
  });

  it("'If a server receives a request with a stale term number, it rejects the request.'", () => {
    const net = new TestNet([1, 2, 3]);
    elect(net, 1);
    const before = net.get(2).status();
    net.get(2).step({ type: MessageType.App, from: 3, to: 2, term: before.term - 1, logTerm: 2, index: before.lastIndex, entries: [{ term: 1, index: before.lastIndex + 1, type: 0, data: bytes("stale") }], commit: before.lastIndex + 1, reject: false, rejectHint: 0 });
    net.processReady(2);
    expect(net.get(2).status()).toMatchObject({ lastIndex: before.lastIndex, commit: before.commit, leader: 1 });
  });
});

describe("§5.2 leader election", () => {
  it("'a follower increments its current term and transitions to candidate state. It then votes for itself and issues RequestVote RPCs in parallel to each of the other servers'", () => {
    const net = new TestNet([1, 2, 3]);
    for (let i = 0; i < 10; i++) net.get(1).tick();
    const st = net.get(1).status();
    expect(st).toMatchObject({ role: "candidate", term: 2, vote: 1 });
    const votes = net.processReady(1).filter((m) => m.type === MessageType.Vote);
    expect(votes.map((m) => m.to).sort()).toEqual([2, 3]);
    expect(votes.every((m) => m.term === 2)).toBe(true);
  });

  it("'A candidate wins an election if it receives votes from a majority of the servers in the full cluster for the same term.'", () => {
    for (const [size, reachable, wins] of [[3, 1, true], [5, 2, true], [5, 1, false], [4, 1, false]] as const) {
      const ids = Array.from({ length: size }, (_, i) => i + 1);
      const net = new TestNet(ids);
      // Node 1 can reach only `reachable` other nodes.
      net.filter = (m) => (m.from === 1 || m.to === 1 ? Math.max(m.from, m.to) <= reachable + 1 : true);
      net.get(1).campaign();
      net.stabilize();
      expect(net.get(1).status().role, `size ${size} reachable ${reachable}`).toBe(wins ? "leader" : "candidate");
    }
  });

  it("'Each server will vote for at most one candidate in a given term, on a first-come-first-served basis.'", () => {
    const net = new TestNet([1, 2, 3]);
    net.get(1).campaign();
    net.get(2).campaign();
    net.processReady(1);
    net.processReady(2);
    net.deliver(3); // 3 gets 1's request first, then 2's
    const resp = net.processReady(3).filter((m) => m.type === MessageType.VoteResp);
    expect(resp.map((m) => [m.to, m.reject])).toEqual([[1, false], [2, true]]);
    expect(net.get(3).status().vote).toBe(1);
  });

  it("'If the AppendEntries RPC's term is at least as large as the candidate's current term, then the candidate recognizes the leader as legitimate and returns to follower state.'", () => {
    const net = new TestNet([1, 2, 3]);
    elect(net, 1);
    net.filter = (m) => m.to !== 3;
    net.get(3).campaign(); // term 3 candidate, isolated from its voters
    net.filter = () => true;
    net.dropAll();
    net.processReady(3);
    net.dropAll();
    net.get(3).step({ type: MessageType.App, from: 2, to: 3, term: 3, logTerm: 2, index: 2, entries: [], commit: 2, reject: false, rejectHint: 0 });
    expect(net.get(3).status()).toMatchObject({ role: "follower", leader: 2, term: 3 });
  });

  it("'Raft uses randomized election timeouts to ensure that split votes are rare': the timeout is drawn from [electionTick, 2*electionTick)", () => {
    for (const jitter of [0, 4, 9]) {
      const net = new TestNet([1, 2, 3], {}, () => jitter);
      let ticks = 0;
      while (net.get(1).status().role === "follower" && ticks < 100) {
        net.get(1).tick();
        ticks++;
      }
      expect(ticks).toBe(10 + jitter);
    }
  });

  it("split vote: when no candidate obtains a majority, 'each candidate will time out and start a new election by incrementing its term'", () => {
    const net = new TestNet([1, 2, 3, 4]);
    net.get(1).campaign();
    net.get(2).campaign();
    net.processReady(1);
    net.processReady(2);
    // 3 votes for 1, 4 votes for 2: two votes each, no majority of four.
    net.inbox.set(3, net.inbox.get(3)!.filter((m) => m.from === 1).concat(net.inbox.get(3)!.filter((m) => m.from === 2)));
    net.inbox.set(4, net.inbox.get(4)!.filter((m) => m.from === 2).concat(net.inbox.get(4)!.filter((m) => m.from === 1)));
    net.stabilize();
    // Neither can reach three of four votes any more: both give up the election of term 2.
    expect([net.get(1).status(), net.get(2).status()].map((s) => [s.role, s.term, s.leader])).toEqual([["follower", 2, 0], ["follower", 2, 0]]);
    for (let i = 0; i < 10; i++) net.get(1).tick();
    net.stabilize();
    expect(net.get(1).status()).toMatchObject({ role: "leader", term: 3 });
  });
});

describe("§5.3 log replication", () => {
  it("'A log entry is committed once the leader that created the entry has replicated it on a majority of the servers' and 'Once a follower learns that a log entry is committed, it applies the entry to its local state machine (in log order).'", () => {
    const net = new TestNet([1, 2, 3, 4, 5]);
    elect(net, 1);
    net.filter = (m) => ![4, 5].includes(m.to);
    for (const s of ["a", "b", "c"]) net.get(1).propose(bytes(s));
    net.stabilize();
    expect(net.get(1).status().commit).toBe(5);
    expect(net.appliedData(2)).toEqual(["a", "b", "c"]);
    net.filter = (m) => ![3, 4, 5].includes(m.to);
    net.get(1).propose(bytes("d"));
    net.stabilize();
    expect(net.get(1).status().commit).toBe(5); // only 1 and 2 have it: 2 of 5
    expect(net.appliedData(1)).toEqual(["a", "b", "c"]);
  });

  it("'The leader keeps track of the highest index it knows to be committed, and it includes that index in future AppendEntries RPCs (including heartbeats)'", () => {
    const net = new TestNet([1, 2, 3]);
    elect(net, 1);
    net.get(1).propose(bytes("x"));
    net.stabilize();
    net.get(1).tick();
    const hb = net.processReady(1).filter((m) => m.type === MessageType.Heartbeat);
    expect(hb.map((m) => m.commit)).toEqual([3, 3]);
  });

  it("'If the follower does not find an entry in its log with the same index and term, then it refuses the new entries.'", () => {
    const net = new TestNet([1, 2, 3]);
    elect(net, 1);
    net.get(2).step({ type: MessageType.App, from: 1, to: 2, term: 2, logTerm: 7, index: 2, entries: [{ term: 2, index: 3, type: 0, data: bytes("x") }], commit: 2, reject: false, rejectHint: 0 });
    const [resp] = net.processReady(2);
    expect(resp).toMatchObject({ type: MessageType.AppResp, reject: true, index: 2 });
    expect(net.get(2).status().lastIndex).toBe(2);
  });

  it("'the leader must find the latest log entry where the two logs agree, delete any entries in the follower's log after that point, and send the follower all of the leader's entries after that point'", () => {
    const net = new TestNet([1, 2, 3]);
    elect(net, 1);
    // Old leader 1 appends entries that reach nobody.
    net.filter = (m) => m.from !== 1 && m.to !== 1;
    for (const s of ["u1", "u2", "u3"]) net.get(1).propose(bytes(s));
    net.stabilize();
    elect(net, 2);
    net.get(2).propose(bytes("c1"));
    net.stabilize();
    net.filter = () => true;
    net.get(2).tick(); // heartbeat reaches 1
    net.stabilize();
    expect(net.get(1).status()).toMatchObject({ role: "follower", leader: 2, commit: net.get(2).status().commit });
    expect(net.appliedData(1)).toEqual(["c1"]);
    expect(net.nodes.get(1)!.storage.lastIndex()).toBe(net.get(2).status().lastIndex);
  });

  it("Leader Append-Only: 'a leader never overwrites or deletes entries in its log; it only appends new entries' — even when a follower reports a conflict", () => {
    const net = new TestNet([1, 2, 3]);
    elect(net, 1);
    net.get(1).propose(bytes("a"));
    net.stabilize();
    const before = net.nodes.get(1)!.storage.entries(2, 4, Infinity).map((e) => `${e.term}/${e.index}`);
    net.get(1).step({ type: MessageType.AppResp, from: 2, to: 1, term: 2, logTerm: 0, index: 3, entries: [], commit: 0, reject: true, rejectHint: 1, logTermHint: 1 });
    net.stabilize();
    expect(net.nodes.get(1)!.storage.entries(2, 4, Infinity).map((e) => `${e.term}/${e.index}`)).toEqual(before);
  });

  it("fast back-off: a follower far behind with a divergent log is repaired in a few round trips, not one per entry", () => {
    const net = new TestNet([1, 2, 3]);
    elect(net, 1);
    net.filter = (m) => m.from !== 1 && m.to !== 1;
    for (let i = 0; i < 50; i++) net.get(1).propose(bytes(`old${i}`));
    net.stabilize();
    elect(net, 2);
    for (let i = 0; i < 50; i++) net.get(2).propose(bytes(`new${i}`));
    net.stabilize();
    net.filter = () => true;
    const sentBefore = net.sent.length;
    net.get(2).tick();
    net.stabilize();
    const rejects = net.sent.slice(sentBefore).filter((m) => m.type === MessageType.AppResp && m.reject);
    expect(rejects.length).toBeLessThanOrEqual(2);
    expect(net.appliedData(1)).toEqual(Array.from({ length: 50 }, (_, i) => `new${i}`));
  });
});

describe("§5.4 safety", () => {
  it("§5.4.1 'the voter denies its vote if its own log is more up-to-date than that of the candidate'", () => {
    const net = new TestNet([1, 2, 3]);
    elect(net, 1);
    net.filter = (m) => m.to !== 3;
    net.get(1).propose(bytes("x"));
    net.stabilize();
    net.filter = () => true;
    net.get(3).campaign();
    net.stabilize();
    const resps = msgsOf(net, MessageType.VoteResp).filter((m) => m.to === 3);
    expect(resps.length).toBe(2);
    expect(resps.every((m) => m.reject)).toBe(true);
    expect(net.get(3).status().role).not.toBe("leader");
  });

  it("§5.4.2 'Raft never commits log entries from previous terms by counting replicas. Only log entries from the leader's current term are committed by counting replicas'", () => {
    // One entry per App, so the old entry and the new leader's no-op travel separately.
    const net = new TestNet([1, 2, 3], { maxSizePerMsgBytes: 1 });
    elect(net, 1);
    // An entry of term 2 reaches 1 and 2 only, and 2's ack is lost: it is uncommitted.
    net.filter = (m) => m.to !== 3 && !(m.type === MessageType.AppResp && m.to === 1);
    net.get(1).propose(bytes("t2"));
    net.stabilize();
    expect(net.get(1).status().commit).toBe(2);
    // 2 wins term 3 with 3's vote. Node 1 is cut off and no App carrying a term-3 entry gets
    // through except the first (3 rejects it: it lacks index 3), so 2 can only replicate the
    // old entry (index 3, term 2) to 3.
    let firstNewTermApp = true;
    net.filter = (m) => {
      if (m.to === 1 || m.from === 1) return false;
      if (m.type !== MessageType.App || !m.entries.some((e) => e.term === 3)) return true;
      const pass = firstNewTermApp;
      firstNewTermApp = false;
      return pass;
    };
    net.get(2).campaign();
    net.stabilize();
    const st = net.get(2).status();
    expect(st).toMatchObject({ role: "leader", term: 3 });
    // Index 3 is on 2 and 3 — a majority of three — and 2 knows it, yet it is not committed.
    expect(st.progress!.get(3)!.match).toBe(3);
    expect(st.commit).toBe(2);
    // Once the term-3 no-op is replicated, both commit together.
    net.filter = () => true;
    net.get(2).tick();
    net.stabilize();
    expect(net.get(2).status().commit).toBe(4);
    expect(net.appliedData(3)).toEqual(["t2"]);
  });
});

describe("thesis §9.6 pre-vote and §6.2 check-quorum", () => {
  it("pre-vote: 'a candidate would first ask other servers whether its log was up-to-date enough to get their vote' — a partitioned node does not inflate its term", () => {
    const net = new TestNet([1, 2, 3], { preVote: true });
    elect(net, 1);
    net.filter = (m) => m.from !== 3 && m.to !== 3;
    for (let i = 0; i < 100; i++) {
      net.get(3).tick();
      net.stabilize();
    }
    expect(net.get(3).status()).toMatchObject({ term: 2, role: "pre-candidate" });
    net.filter = () => true;
    net.get(1).tick();
    net.stabilize();
    expect(net.get(1).status()).toMatchObject({ role: "leader", term: 2 });
    expect(net.get(3).status()).toMatchObject({ role: "follower", leader: 1 });
  });

  it("check-quorum: a leader steps down when it has not heard from a majority within an election timeout", () => {
    const net = new TestNet([1, 2, 3], { checkQuorum: true });
    elect(net, 1);
    net.filter = (m) => m.from !== 1 && m.to !== 1;
    for (let i = 0; i < 20; i++) {
      net.get(1).tick();
      net.stabilize();
    }
    expect(net.get(1).status().role).toBe("follower");
  });

  it("leader lease: with check-quorum, a follower that heard from the leader within the election timeout ignores a vote request", () => {
    const net = new TestNet([1, 2, 3], { checkQuorum: true });
    elect(net, 1);
    net.get(3).campaign(); // no pre-vote: it bumps its own term
    net.stabilize();
    expect(net.get(1).status()).toMatchObject({ role: "leader", term: 2 });
    expect(net.get(2).status().term).toBe(2);
  });
});
