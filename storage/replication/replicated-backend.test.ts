import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { describeBlockBackendContract } from "../nbd/backend-contract.ts";
import { FakeTarget } from "./fake-target.ts";
import { healAndRejoin, healReplica } from "./heal.ts";
import { ReplicatedBackend } from "./replicated-backend.ts";
import type { ReplicationControl } from "./replicated-backend.ts";

const K = 1024;
const M = 1024 * K;

interface Marked {
  nodeId: string;
  fullHeal: boolean;
}

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

function setup(sizeBytes = 8 * M, control?: ReplicationControl, inSync = ["a", "b", "c"]) {
  const [a, b, c] = ["a", "b", "c"].map((n) => new FakeTarget(n, sizeBytes)) as [FakeTarget, FakeTarget, FakeTarget];
  const marked: Marked[] = [];
  const ctl: ReplicationControl = control ?? {
    markOutOfSync: async (nodeId, info) => {
      marked.push({ nodeId, fullHeal: info.fullHeal });
    },
  };
  const backend = new ReplicatedBackend({ imageId: "img", epoch: 1, sizeBytes, local: a, remotes: [b, c], inSync, control: ctl });
  return { a, b, c, backend, marked };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describeBlockBackendContract("replicated over three in-memory replicas", async (sizeBytes) => {
  const { backend } = setup(sizeBytes);
  return { backend, dispose: () => backend.close() };
});

describe("ReplicatedBackend", () => {
  it("writes to every in-sync replica and reads the local copy", async () => {
    const { a, b, c, backend } = setup();
    const data = randomBytes(64 * K);
    await backend.write(M, data, { fua: true });
    for (const t of [a, b, c]) expect(t.bytes.subarray(M, M + data.length).equals(data)).toBe(true);
    expect((await backend.read(M, data.length)).equals(data)).toBe(true);
    expect([a.stats.reads, b.stats.reads, c.stats.reads]).toEqual([1, 0, 0]);
  });

  it("marks a failing replica out of sync once, before acknowledging, and records its regions", async () => {
    const gate = deferred();
    const calls: Marked[] = [];
    const { b, c, backend } = setup(8 * M, {
      markOutOfSync: (nodeId, info) => {
        calls.push({ nodeId, fullHeal: info.fullHeal });
        return gate.promise;
      },
    });
    await backend.flush();
    c.failWith = "timeout";
    let acked = 0;
    const writes = [0, 1, 2, 3].map((i) => backend.write(i * M, Buffer.alloc(4 * K, i + 1), { fua: false }).then(() => acked++));
    for (let i = 0; i < 5; i++) await tick();
    expect(acked).toBe(0); // waiting for the Raft commit of the out-of-sync mark
    expect(calls).toEqual([{ nodeId: "c", fullHeal: false }]);
    gate.resolve();
    await Promise.all(writes);
    await backend.write(5 * M, Buffer.alloc(4 * K, 9), { fua: false }); // skips c, no new mark
    expect(calls).toHaveLength(1);
    expect(b.bytes[5 * M]).toBe(9);
    expect(backend.status().find((s) => s.nodeId === "c")).toMatchObject({ state: "out", fullHeal: false });
    expect([...backend.dirtyMap("c")!.ranges()]).toEqual([0, 1, 2, 3, 5].map((i) => ({ offset: i * M, length: 64 * K })));
  });

  it("fails the write with EIO when the out-of-sync mark is refused, and retries the mark on the next write", async () => {
    let refuse = true;
    const calls: string[] = [];
    const { c, backend } = setup(8 * M, {
      markOutOfSync: async (nodeId) => {
        calls.push(nodeId);
        if (refuse) throw new Error("quorum: too few in-sync replicas would remain");
      },
    });
    c.failWith = "io";
    await expect(backend.write(0, Buffer.alloc(512, 1), { fua: false })).rejects.toMatchObject({ code: "io", message: expect.stringMatching(/quorum/) });
    refuse = false;
    await backend.write(4096, Buffer.alloc(512, 2), { fua: false });
    expect(calls).toEqual(["c", "c"]);
    expect(backend.dirtyMap("c")!.dirtyExtents).toBe(1);
  });

  it("includes writes not yet flushed in the dirty map of a replica that fails", async () => {
    const { c, backend } = setup();
    await backend.write(0, Buffer.alloc(512, 1), { fua: false });
    await backend.flush();
    await backend.write(2 * M, Buffer.alloc(512, 1), { fua: false }); // acknowledged by c, not flushed
    c.failWith = "closed";
    await backend.write(4 * M, Buffer.alloc(512, 1), { fua: false });
    expect([...backend.dirtyMap("c")!.ranges()].map((r) => r.offset)).toEqual([2 * M, 4 * M]);
  });

  it("a failed flush makes the replica need a full compare heal", async () => {
    const { b, backend, marked } = setup();
    b.failWith = "io";
    await backend.flush();
    expect(marked).toEqual([{ nodeId: "b", fullHeal: true }]);
  });

  it("stops with EIO and marks nothing once a replica reports a newer epoch", async () => {
    const { b, backend, marked } = setup();
    b.failWith = "stale_epoch";
    await expect(backend.write(0, Buffer.alloc(512), { fua: false })).rejects.toMatchObject({ code: "io", message: expect.stringMatching(/fenced/) });
    b.failWith = null;
    await expect(backend.read(0, 512)).rejects.toMatchObject({ message: expect.stringMatching(/fenced/) });
    expect(marked).toEqual([]);
  });

  it("reads from an in-sync remote when the local copy is out of sync, never from a stale one", async () => {
    const { a, b, c, backend } = setup(8 * M, undefined, ["b", "c"]);
    b.bytes.fill(7, 0, 4096);
    c.bytes.fill(7, 0, 4096);
    a.bytes.fill(1, 0, 4096);
    expect((await backend.read(0, 4096)).every((x) => x === 7)).toBe(true);
    b.failWith = "closed";
    expect((await backend.read(0, 4096)).every((x) => x === 7)).toBe(true);
    expect(a.stats.reads).toBe(0);
  });

  it("orders overlapping writes: the second reaches replicas only after the first completed", async () => {
    const { b, backend } = setup();
    b.hold();
    const first = backend.write(0, Buffer.alloc(8 * K, 1), { fua: false });
    const second = backend.write(4 * K, Buffer.alloc(8 * K, 2), { fua: false });
    const apart = backend.write(M, Buffer.alloc(4 * K, 3), { fua: false });
    await tick();
    b.release();
    await Promise.all([first, second, apart]);
    expect(b.bytes[4 * K]).toBe(2);
    expect(b.bytes[0]).toBe(1);
  });

  it("heals a returning replica from its dirty map while writes continue, then counts it in sync", async () => {
    const { a, c, backend } = setup();
    c.failWith = "closed";
    for (let i = 0; i < 8; i++) await backend.write(i * M + 100, randomBytes(5000), { fua: false });
    c.failWith = null;
    const { mode, dirty } = backend.startHealing("c");
    expect(mode).toBe("dirty");
    expect(dirty.dirtyBytes).toBe(8 * 64 * K);
    const during = backend.write(3 * M, randomBytes(4096), { fua: false });
    const progress: number[] = [];
    const result = await healReplica({
      access: backend,
      nodeId: "c",
      imageId: "img",
      mode,
      dirty,
      sizeBytes: backend.sizeBytes,
      bytesPerSec: 0,
      pacing: { nowMs: () => 0, sleep: async () => undefined },
      onProgress: (done) => progress.push(done),
    });
    await during;
    expect(result.copiedBytes).toBe(8 * 64 * K);
    expect(c.stats.writtenBytes).toBeLessThan(2 * M); // only dirty regions (plus the concurrent write)
    expect(progress.at(-1)).toBe(8 * 64 * K);
    let committed = false;
    await backend.completeHeal("c", async () => void (committed = true));
    expect(committed).toBe(true);
    expect(backend.status().map((s) => s.state)).toEqual(["in_sync", "in_sync", "in_sync"]);
    expect(c.bytes.equals(a.bytes)).toBe(true);
  });

  it("hands the regions an out-of-sync replica missed to the next writer, which heals just those", async () => {
    const { a, c, backend } = setup();
    c.failWith = "closed";
    await backend.write(M, randomBytes(3 * K), { fua: false });
    await backend.write(5 * M + 100, randomBytes(70 * K), { fua: false });
    await backend.flush();
    const kept = backend.dirtyToKeep(16);
    expect([...kept.keys()]).toEqual(["c"]);
    expect(kept.get("c")).toEqual([{ offset: M, length: 64 * K }, { offset: 5 * M, length: 128 * K }]);
    expect(backend.dirtyToKeep(1).size).toBe(0); // more ranges than allowed: nothing kept, the next writer compares
    await backend.close();

    // The next writer: c still out of sync, its regions known.
    c.failWith = null;
    const next = new ReplicatedBackend({
      imageId: "img", epoch: 2, sizeBytes: 8 * M, local: a, remotes: [new FakeTarget("b", 8 * M), c], inSync: ["a", "b"],
      control: { markOutOfSync: async () => undefined }, knownDirty: kept,
    });
    expect(next.status().find((s) => s.nodeId === "c")).toMatchObject({ state: "out", fullHeal: false, dirtyBytes: 192 * K });
    const { mode, dirty } = next.startHealing("c");
    expect(mode).toBe("dirty");
    const result = await healReplica({
      access: next, nodeId: "c", imageId: "img", mode, dirty, sizeBytes: next.sizeBytes, bytesPerSec: 0,
      pacing: { nowMs: () => 0, sleep: async () => undefined },
    });
    expect(result).toEqual({ copiedBytes: 192 * K, comparedBytes: 0 });
    expect(c.bytes.equals(a.bytes)).toBe(true);
    // Without known regions the same replica would need a compare.
    const unknown = new ReplicatedBackend({ imageId: "img", epoch: 3, sizeBytes: 8 * M, local: a, remotes: [c], inSync: ["a"], control: { markOutOfSync: async () => undefined } });
    expect(unknown.status()[1]).toMatchObject({ state: "out", fullHeal: true });
    expect(unknown.dirtyToKeep(16).size).toBe(0);
  });

  it("compare-heals an in-sync replica after an unclean takeover without taking it out of sync", async () => {
    const { a, b, backend, marked } = setup(4 * M);
    a.bytes.fill(5, 0, 2 * M);
    b.bytes.fill(5, 0, 2 * M);
    b.bytes.fill(6, M + 10, M + 20); // an unacknowledged write only b got before the old coordinator died
    const res = await healReplica({
      access: backend,
      nodeId: "b",
      imageId: "img",
      mode: "compare",
      dirty: backend.dirtyMap("b")!,
      sizeBytes: 4 * M,
      bytesPerSec: 0,
      pacing: { nowMs: () => 0, sleep: async () => undefined },
    });
    expect(res.copiedBytes).toBe(M);
    expect(b.bytes.equals(a.bytes)).toBe(true);
    expect(backend.status().map((s) => s.state)).toEqual(["in_sync", "in_sync", "in_sync"]);
    expect(marked).toEqual([]);
  });

  it("healAndRejoin: a failed compare heal leaves the regions unknown; the next attempt rejoins the replica", async () => {
    const { a, c, backend } = setup(4 * M, undefined, ["a", "b"]);
    a.bytes.fill(3, 0, 3 * M);
    const pacing = { nowMs: () => 0, sleep: async () => undefined };
    let inSyncCommits = 0;
    const opts = { backend, nodeId: "c", imageId: "img", bytesPerSec: 0, pacing, markInSync: async () => void inSyncCommits++ };
    c.failWith = "closed";
    await expect(healAndRejoin(opts)).rejects.toMatchObject({ code: "closed" });
    expect(backend.status()[2]).toMatchObject({ state: "out", fullHeal: true });
    c.failWith = null;
    const progress: number[][] = [];
    const res = await healAndRejoin({ ...opts, onProgress: (d, t) => progress.push([d, t]) });
    expect(res).toEqual({ copiedBytes: 3 * M, comparedBytes: 4 * M });
    expect(progress.at(-1)).toEqual([4 * M, 4 * M]);
    expect(inSyncCommits).toBe(1);
    expect(c.bytes.equals(a.bytes)).toBe(true);
    expect(backend.status()[2]).toMatchObject({ state: "in_sync", fullHeal: false });
  });
});
