// Tests of the public RaftNode API: bootstrap, the Ready/advance contract (no self-messages,
// own entries count only once persisted, bounded committed batches), errors with stable codes,
// restart from storage, and the conf change encoding.
import { describe, expect, it } from "vitest";
import { RaftNode, encodeConfChange, decodeConfChange } from "./node.ts";
import { MemoryStorage } from "./memory-storage.ts";
import { TestNet, bytes } from "./test-net.ts";
import { ConfChangeType, MessageType, RaftError, type RaftConfig } from "./types.ts";

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof RaftError) return err.code;
    throw err;
  }
  return "no error";
}

function config(id: number, storage: MemoryStorage, extra: Partial<RaftConfig> = {}): RaftConfig {
  return {
    id, electionTick: 10, heartbeatTick: 1, storage, applied: 0, maxSizePerMsgBytes: 1 << 20, maxInflightMsgs: 16,
    maxUncommittedEntriesBytes: 1 << 20, maxCommittedSizePerReadyBytes: 1 << 20, checkQuorum: true, preVote: true,
    rand: { intn: () => 0 }, ...extra,
  };
}

describe("RaftNode", () => {
  it("bootstraps a group once, with the voters in the initial configuration", () => {
    const s = new MemoryStorage();
    RaftNode.bootstrap(s, [3, 1, 2]);
    expect(s.initialState().confState).toEqual({ voters: [1, 2, 3], learners: [] });
    expect(codeOf(() => RaftNode.bootstrap(s, [1]))).toBe("invalid");
    expect(codeOf(() => RaftNode.bootstrap(new MemoryStorage(), []))).toBe("invalid");
  });

  it("rejects an invalid configuration with all problems named", () => {
    const s = new MemoryStorage();
    expect(() => new RaftNode(config(1, s, { electionTick: 1, maxInflightMsgs: 0 }))).toThrow(/electionTick.*maxInflightMsgs/);
  });

  it("a single voter elects itself and commits its entries only after advance() persisted them", () => {
    const s = new MemoryStorage();
    RaftNode.bootstrap(s, [1]);
    const n = new RaftNode(config(1, s));
    n.campaign();
    expect(n.status().role).toBe("leader");
    let rd = n.ready();
    expect(rd.messages).toEqual([]);
    expect(rd.entries.length).toBe(1);
    expect(rd.committedEntries).toEqual([]);
    s.append(rd.entries, true);
    if (rd.hardState) s.setHardState(rd.hardState, true);
    n.advance(rd);
    rd = n.ready();
    expect(rd.committedEntries.map((e) => e.index)).toEqual([2]);
    n.advance(rd);
    expect(n.hasReady()).toBe(false);
  });

  it("never puts a message to itself in a Ready", () => {
    const net = new TestNet([1, 2, 3]);
    net.get(1).campaign();
    net.stabilize();
    for (let i = 0; i < 5; i++) net.get(1).propose(bytes(`p${i}`));
    net.get(1).readIndex(bytes("r"));
    net.get(2).readIndex(bytes("r2"));
    for (let i = 0; i < 30; i++) {
      net.get(1).tick();
      net.stabilize();
    }
    expect(net.sent.length).toBeGreaterThan(20);
    expect(net.sent.filter((m) => m.from === m.to)).toEqual([]);
  });

  it("the leader's own append counts toward commitment only once persisted", () => {
    const net = new TestNet([1, 2, 3, 4, 5]);
    net.get(1).campaign();
    net.stabilize();
    const leader = net.nodes.get(1)!;
    leader.node.propose(bytes("x"));
    const rd = leader.node.ready(); // not yet persisted
    for (const m of rd.messages) net.inbox.get(m.to)!.push(m);
    for (const id of [2, 3]) {
      net.deliver(id);
      net.processReady(id);
    }
    net.deliver(1); // two follower acks + an unpersisted leader entry: 2 of 5
    expect(leader.node.status().commit).toBe(2);
    leader.storage.append(rd.entries, true);
    leader.node.advance(rd);
    expect(leader.node.status().commit).toBe(3);
  });

  it("hands out committed entries in batches bounded by maxCommittedSizePerReadyBytes", () => {
    const net = new TestNet([1], { maxCommittedSizePerReadyBytes: 250 });
    net.get(1).campaign();
    net.stabilize();
    for (let i = 0; i < 10; i++) net.get(1).propose(new Uint8Array(100));
    const sizes: number[] = [];
    for (let i = 0; i < 20 && net.get(1).hasReady(); i++) {
      const before = net.nodes.get(1)!.applied.length;
      net.processReady(1);
      sizes.push(net.nodes.get(1)!.applied.length - before);
    }
    expect(sizes.filter((n) => n > 0).every((n) => n <= 2)).toBe(true);
    expect(net.nodes.get(1)!.applied.length).toBe(11);
  });

  it("refuses local message types from step() and ignores responses from non-members", () => {
    const s = new MemoryStorage();
    RaftNode.bootstrap(s, [1, 2, 3]);
    const n = new RaftNode(config(1, s));
    const m = { type: MessageType.Hup, from: 2, to: 1, term: 0, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 };
    expect(codeOf(() => n.step(m))).toBe("step_local_msg");
    n.step({ ...m, type: MessageType.AppResp, from: 9, term: 5 });
    expect(n.status().term).toBe(1);
  });

  it("refuses proposals with stable codes: no leader, pending conf change, invalid conf change, transfer under way", () => {
    const net = new TestNet([1, 2, 3]);
    expect(codeOf(() => net.get(2).propose(bytes("x")))).toBe("proposal_dropped");
    net.get(1).campaign();
    net.stabilize();
    const leader = net.get(1);
    expect(codeOf(() => leader.proposeConfChange({ type: ConfChangeType.AddLearner, nodeId: 2 }))).toBe("invalid");
    expect(codeOf(() => leader.proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 9 }))).toBe("invalid");
    leader.proposeConfChange({ type: ConfChangeType.AddLearner, nodeId: 4 });
    expect(codeOf(() => leader.proposeConfChange({ type: ConfChangeType.AddLearner, nodeId: 5 }))).toBe("conf_change_pending");
    net.stabilize();
    expect(leader.status().confState).toEqual({ voters: [1, 2, 3], learners: [4] });
    leader.proposeConfChange({ type: ConfChangeType.AddLearner, nodeId: 5 }); // allowed once applied
    net.filter = (m) => m.to !== 3;
    leader.transferLeadership(3);
    expect(codeOf(() => leader.propose(bytes("y")))).toBe("proposal_dropped");
  });

  it("a second conf change forwarded from a follower while one is pending becomes a no-op entry", () => {
    const net = new TestNet([1, 2, 3]);
    net.get(1).campaign();
    net.stabilize();
    net.get(1).proposeConfChange({ type: ConfChangeType.AddLearner, nodeId: 4 });
    net.get(2).proposeConfChange({ type: ConfChangeType.AddLearner, nodeId: 5 });
    net.stabilize();
    expect(net.get(1).status().confState).toEqual({ voters: [1, 2, 3], learners: [4] });
    const last = net.nodes.get(2)!.applied.at(-1)!;
    expect([last.type, last.data.length]).toEqual([0, 0]);
  });

  it("restarts from storage without re-applying what was applied, and keeps its term and vote", () => {
    const net = new TestNet([1, 2, 3]);
    net.get(1).campaign();
    net.stabilize();
    for (const s of ["a", "b"]) net.get(1).propose(bytes(s));
    net.stabilize();
    const n2 = net.nodes.get(2)!;
    const applied = n2.node.status().applied;
    const again = new RaftNode({ ...n2.config, applied });
    expect(again.status()).toMatchObject({ term: 2, vote: 1, commit: applied, applied, lastIndex: applied });
    expect(again.hasReady()).toBe(false);
    const fromScratch = new RaftNode({ ...n2.config, applied: 0 });
    expect(fromScratch.ready().committedEntries.map((e) => e.index)).toEqual([2, 3, 4]);
  });

  it("restarts after a crash between persisting a snapshot and the hard state: the snapshot counts as committed", () => {
    const s = new MemoryStorage();
    RaftNode.bootstrap(s, [1, 2, 3]);
    s.applySnapshot({ metadata: { index: 5, term: 2, confState: { voters: [1, 2, 3], learners: [] } }, data: new Uint8Array(0) });
    const n = new RaftNode(config(2, s)); // hard state still says commit 1
    expect(n.status()).toMatchObject({ commit: 5, applied: 5, lastIndex: 5 });
    s.setHardState({ term: 2, vote: 0, commit: 9 }, true);
    expect(codeOf(() => new RaftNode(config(2, s)))).toBe("invalid");
  });

  it("reportUnreachable stops optimistic replication; reportSnapshot failure returns to probing", () => {
    const net = new TestNet([1, 2, 3]);
    net.get(1).campaign();
    net.stabilize();
    net.get(1).reportUnreachable(2);
    expect(net.get(1).status().progress!.get(2)!.state).toBe("probe");
    net.get(1).reportSnapshot(3, false); // not in snapshot state: ignored
    expect(net.get(1).status().progress!.get(3)!.state).toBe("replicate");
  });

  it("serves ReadIndex on a single voter at once, and on a follower via the leader", () => {
    const net = new TestNet([1, 2, 3]);
    net.get(1).campaign();
    net.stabilize();
    net.get(2).readIndex(bytes("q"));
    const states: string[] = [];
    for (let i = 0; i < 10; i++) {
      for (const id of [1, 2, 3]) {
        const n = net.nodes.get(id)!;
        if (!n.node.hasReady()) continue;
        const rd = n.node.ready();
        for (const rs of rd.readStates) states.push(`${id}:${rs.index}:${new TextDecoder().decode(rs.requestCtx)}`);
        for (const m of rd.messages) net.inbox.get(m.to)!.push(m);
        n.storage.append(rd.entries, true);
        n.node.advance(rd);
      }
      for (const id of [1, 2, 3]) net.deliver(id);
    }
    expect(states).toEqual(["2:2:q"]);
    const s = new MemoryStorage();
    RaftNode.bootstrap(s, [1]);
    const single = new RaftNode(config(1, s));
    single.campaign();
    single.readIndex(bytes("z"));
    // Not before the leader's no-op (index 2) is committed: the commit index may lag after a restart.
    const rd = single.ready();
    expect(rd.readStates).toEqual([]);
    s.append(rd.entries, true);
    single.advance(rd);
    expect(single.ready().readStates.map((r) => r.index)).toEqual([2]);
  });

  it("round-trips conf changes through the entry encoding and rejects garbage", () => {
    const cc = { type: ConfChangeType.AddLearner, nodeId: 12345678901, context: bytes("10.0.0.4:7000") };
    expect(decodeConfChange(encodeConfChange(cc))).toEqual(cc);
    expect(decodeConfChange(encodeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 3 }))).toEqual({ type: ConfChangeType.RemoveNode, nodeId: 3 });
    expect(codeOf(() => decodeConfChange(bytes("{}")))).toBe("invalid");
  });
});
