// The storage state module on its own: payload checks naming the field; volumes with one brick
// per replica on member nodes, unique names, refused deletion while images remain; brick
// reports; images with one in-sync replica per brick, grow-only resize, deletion refused while
// a writer holds them; the writer epoch (acquire, stale release ignored) and the replica-set
// commands refused for stale epochs and below the write quorum, with the generation bumped on
// every change of the set. Apply is checked deterministic by replaying into a second database.
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import type { CommandResult } from "../../core/state/apply.ts";
import { allMigrations, migrate } from "../../core/state/migrations.ts";
import type { ApplyContext } from "../../core/state/modules.ts";
import { getImage, getImageByName, getVolumeByName, listImages, listImagesOnNode, listVolumes, storageModule } from "./storage-module.ts";

const uuid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;
const vol = uuid(100);
const img = uuid(200);
const GiB = 1024 ** 3;

function open(nodes = [1, 2, 3]) {
  const db = new Database(":memory:");
  migrate(db);
  for (const id of nodes) db.prepare("INSERT INTO nodes (id, name, address, role, added_index) VALUES (?, ?, ?, 'voter', 0)").run(id, `n${id}`, `127.0.0.1:${7000 + id}`);
  let index = 0;
  const log: Array<[string, unknown]> = [];
  const run = (name: string, payload: unknown): CommandResult => {
    const spec = storageModule.commands[name]!;
    const ctx: ApplyContext = { db, index: ++index, atMs: 1000 + index, clientId: "c", prepare: (sql) => db.prepare(sql) };
    const checkedPayload = spec.validate(payload);
    log.push([name, checkedPayload]);
    return db.transaction(() => spec.apply(ctx, checkedPayload))();
  };
  return { db, run, log };
}

const bricks3 = [{ nodeId: 1, path: "" }, { nodeId: 2, path: "/srv/bricks/v1" }, { nodeId: 3, path: "" }];

function withImage(replicaCount = 3) {
  const s = open();
  expect(s.run("storage.volume.create", { id: vol, name: "vol1", replicaCount, bricks: bricks3.slice(0, replicaCount) })).toEqual({ ok: true, id: vol });
  expect(s.run("storage.image.create", { id: img, volumeId: vol, name: "disk1", kind: "disk", format: "raw", sizeBytes: GiB, state: "ready" })).toEqual({ ok: true, id: img });
  return s;
}

describe("storage module: volumes", () => {
  it("checks payloads before proposal, naming the field", () => {
    const v = storageModule.commands["storage.volume.create"]!.validate;
    const base = { id: vol, name: "vol1", replicaCount: 3, bricks: bricks3 };
    expect(v(base)).toEqual({ ...base, arbiter: false });
    expect(() => v({ ...base, name: "Vol_1" })).toThrow(/field "name"/);
    expect(() => v({ ...base, id: "x" })).toThrow(/field "id"/);
    expect(() => v({ ...base, replicaCount: 4 })).toThrow(/field "replicaCount" must be an integer from 1 to 3/);
    expect(() => v({ ...base, replicaCount: 2 })).toThrow(/field "bricks" must list one brick per replica \(2\)/);
    expect(() => v({ ...base, bricks: [bricks3[0], bricks3[0], bricks3[2]] })).toThrow(/distinct nodes/);
    expect(() => v({ ...base, bricks: [bricks3[0], { nodeId: 2, path: "relative/dir" }, bricks3[2]] })).toThrow(/field "bricks\[1\].path" must be an absolute path/);
    expect(() => v({ ...base, bricks: [bricks3[0], { nodeId: 2, path: "/srv/../etc" }, bricks3[2]] })).toThrow(/bricks\[1\].path/);
    expect(() => v({ ...base, bricks: [bricks3[0], { nodeId: 0, path: "" }, bricks3[2]] })).toThrow(/bricks\[1\].nodeId/);
  });

  it("creates a volume with its bricks, refuses duplicate names and unknown nodes, and records brick reports", () => {
    const { db, run } = open();
    expect(run("storage.volume.create", { id: vol, name: "vol1", replicaCount: 3, bricks: bricks3 })).toEqual({ ok: true, id: vol });
    expect(run("storage.volume.create", { id: uuid(101), name: "vol1", replicaCount: 3, bricks: bricks3 })).toMatchObject({ ok: false, code: "already_exists", field: "name" });
    expect(run("storage.volume.create", { id: uuid(102), name: "vol2", replicaCount: 1, bricks: [{ nodeId: 9, path: "" }] })).toMatchObject({ ok: false, code: "not_found", field: "bricks" });
    expect(listVolumes(db).map((x) => x.name)).toEqual(["vol1"]);
    const v = getVolumeByName(db, "vol1")!;
    expect(v).toMatchObject({ id: vol, replicaCount: 3, createdAtMs: 1001 });
    expect(v.bricks).toEqual([
      { volumeId: vol, nodeId: 1, path: "", capacityBytes: 0, usedBytes: 0, reportedAtMs: 0 },
      { volumeId: vol, nodeId: 2, path: "/srv/bricks/v1", capacityBytes: 0, usedBytes: 0, reportedAtMs: 0 },
      { volumeId: vol, nodeId: 3, path: "", capacityBytes: 0, usedBytes: 0, reportedAtMs: 0 },
    ]);
    expect(run("storage.brick.report", { volumeId: vol, nodeId: 2, capacityBytes: 100 * GiB, usedBytes: 3 * GiB })).toEqual({ ok: true });
    expect(getVolumeByName(db, "vol1")!.bricks[1]).toMatchObject({ capacityBytes: 100 * GiB, usedBytes: 3 * GiB, reportedAtMs: 1004 });
    expect(run("storage.brick.report", { volumeId: vol, nodeId: 7, capacityBytes: 1, usedBytes: 0 })).toMatchObject({ ok: false, code: "not_found" });
    expect(() => storageModule.commands["storage.brick.report"]!.validate({ volumeId: vol, nodeId: 2, capacityBytes: -1, usedBytes: 0 })).toThrow(/capacityBytes/);
    expect(getVolumeByName(db, "nope")).toBeNull();
  });

  it("refuses to delete a volume that has images, deletes it once empty", () => {
    const { db, run } = withImage();
    expect(run("storage.volume.delete", { id: vol })).toMatchObject({ ok: false, code: "failed_precondition", message: expect.stringMatching(/still has 1 image/) });
    expect(listVolumes(db)).toHaveLength(1);
    expect(run("storage.image.delete", { id: img })).toEqual({ ok: true, deleted: true });
    expect(run("storage.volume.delete", { id: vol })).toEqual({ ok: true, deleted: true });
    expect(listVolumes(db)).toEqual([]);
    expect(db.prepare("SELECT count(*) FROM storage_bricks").pluck().get()).toBe(0);
    expect(run("storage.volume.delete", { id: vol })).toMatchObject({ ok: false, code: "not_found" });
  });
});

describe("storage module: images", () => {
  it("checks image payloads, naming the field", () => {
    const v = storageModule.commands["storage.image.create"]!.validate;
    const base = { id: img, volumeId: vol, name: "disk1", kind: "disk", format: "qcow2", sizeBytes: GiB, state: "ready" };
    expect(v(base)).toEqual(base);
    expect(v({ id: img, volumeId: vol, name: "debian-12.iso", sizeBytes: 512, kind: "iso" })).toMatchObject({ format: "raw", state: "ready", kind: "iso" });
    expect(() => v({ ...base, sizeBytes: GiB + 1 })).toThrow(/field "sizeBytes" must be a multiple of 512/);
    expect(() => v({ ...base, sizeBytes: 0 })).toThrow(/sizeBytes/);
    expect(() => v({ ...base, name: "-bad" })).toThrow(/field "name"/);
    expect(() => v({ ...base, kind: "iso" })).toThrow(/field "format" a iso image must be raw/);
    expect(() => v({ ...base, format: "vmdk" })).toThrow(/field "format" must be one of raw, qcow2/);
    expect(() => v({ ...base, state: "gone" })).toThrow(/field "state"/);
    expect(() => storageModule.commands["storage.image.resize"]!.validate({ id: img, sizeBytes: 1000 })).toThrow(/sizeBytes/);
  });

  it("creates an image with one in-sync replica per brick, unique per volume, on an existing volume only", () => {
    const { db, run } = withImage();
    const i = getImage(db, img)!;
    expect(i).toMatchObject({ volumeId: vol, name: "disk1", kind: "disk", format: "raw", sizeBytes: GiB, state: "ready", generation: 1, writerEpoch: 0, writerNodeId: null, writerClean: true });
    expect(i.replicas).toEqual([1, 2, 3].map((nodeId) => ({ nodeId, inSync: true, fullHeal: false, healDoneBytes: 0, healTotalBytes: 0, reason: "", dirtyRanges: null })));
    const again = { id: uuid(201), volumeId: vol, name: "disk1", kind: "disk", format: "raw", sizeBytes: GiB, state: "ready" };
    expect(run("storage.image.create", again)).toMatchObject({ ok: false, code: "already_exists", field: "name" });
    expect(run("storage.image.create", { ...again, volumeId: uuid(999), name: "disk2" })).toMatchObject({ ok: false, code: "not_found", field: "volume" });
    expect(run("storage.image.create", { ...again, name: "disk2", state: "uploading" })).toEqual({ ok: true, id: uuid(201) });
    expect(listImages(db, vol).map((x) => x.name)).toEqual(["disk1", "disk2"]);
    expect(listImages(db).length).toBe(2);
    expect(listImages(db, uuid(999))).toEqual([]);
    expect(getImageByName(db, "vol1", "disk2")!.state).toBe("uploading");
    expect(getImageByName(db, "vol2", "disk2")).toBeNull();
    expect(listImagesOnNode(db, 2).length).toBe(2);
    expect(listImagesOnNode(db, 4)).toEqual([]);
    expect(run("storage.image.setState", { id: uuid(201), state: "ready" })).toEqual({ ok: true });
    expect(getImage(db, uuid(201))!.state).toBe("ready");
    expect(run("storage.image.setState", { id: uuid(999), state: "ready" })).toMatchObject({ ok: false, code: "not_found" });
  });

  it("grows an image, refuses to shrink it", () => {
    const { db, run } = withImage();
    expect(run("storage.image.resize", { id: img, sizeBytes: 2 * GiB })).toEqual({ ok: true, sizeBytes: 2 * GiB, previousSizeBytes: GiB });
    expect(run("storage.image.resize", { id: img, sizeBytes: GiB })).toMatchObject({ ok: false, code: "invalid_argument", field: "size_bytes", message: expect.stringMatching(/only grow/) });
    expect(getImage(db, img)!.sizeBytes).toBe(2 * GiB);
    expect(run("storage.image.resize", { id: uuid(999), sizeBytes: GiB })).toMatchObject({ ok: false, code: "not_found" });
  });

  it("refuses to delete an image while a writer holds it", () => {
    const { db, run } = withImage();
    const { epoch } = run("storage.image.acquireWriter", { id: img, nodeId: 2 }) as unknown as { epoch: number };
    expect(run("storage.image.delete", { id: img })).toMatchObject({ ok: false, code: "failed_precondition", message: expect.stringMatching(/open for writing on node 2/) });
    expect(run("storage.image.releaseWriter", { id: img, epoch })).toEqual({ ok: true, released: true });
    expect(run("storage.image.delete", { id: img })).toEqual({ ok: true, deleted: true });
    expect(getImage(db, img)).toBeNull();
    expect(db.prepare("SELECT count(*) FROM storage_replicas").pluck().get()).toBe(0);
  });
});

describe("storage module: writer epoch and replica set", () => {
  it("bumps the epoch on every acquire, reports whether the previous writer released cleanly, ignores a stale release", () => {
    const { db, run } = withImage();
    expect(run("storage.image.acquireWriter", { id: img, nodeId: 1 })).toEqual({ ok: true, epoch: 1, previousClean: true, previousNodeId: null });
    expect(getImage(db, img)).toMatchObject({ writerEpoch: 1, writerNodeId: 1, writerClean: false });
    // Node 1 vanished without releasing: node 2 takes over and learns the takeover is unclean.
    expect(run("storage.image.acquireWriter", { id: img, nodeId: 2 })).toEqual({ ok: true, epoch: 2, previousClean: false, previousNodeId: 1 });
    expect(run("storage.image.releaseWriter", { id: img, epoch: 1 })).toEqual({ ok: true, released: false });
    expect(getImage(db, img)).toMatchObject({ writerEpoch: 2, writerNodeId: 2, writerClean: false });
    expect(run("storage.image.releaseWriter", { id: img, epoch: 2 })).toEqual({ ok: true, released: true });
    expect(getImage(db, img)).toMatchObject({ writerEpoch: 2, writerNodeId: null, writerClean: true });
    expect(run("storage.image.acquireWriter", { id: img, nodeId: 3 })).toMatchObject({ epoch: 3, previousClean: true });
    expect(run("storage.image.acquireWriter", { id: uuid(999), nodeId: 3 })).toMatchObject({ ok: false, code: "not_found" });
  });

  it("marks replicas out of sync only from the current epoch and never below the write quorum", () => {
    const { db, run } = withImage();
    run("storage.image.acquireWriter", { id: img, nodeId: 1 });
    run("storage.image.acquireWriter", { id: img, nodeId: 1 });
    expect(run("storage.image.replicaOutOfSync", { id: img, epoch: 1, nodeId: 3, fullHeal: false })).toMatchObject({ ok: false, code: "stale_epoch", field: "epoch" });
    expect(getImage(db, img)!.replicas[2]!.inSync).toBe(true);
    expect(run("storage.image.replicaOutOfSync", { id: img, epoch: 2, nodeId: 3, fullHeal: false })).toEqual({ ok: true, generation: 2 });
    // Two of three is the quorum: the second replica may not leave.
    expect(run("storage.image.replicaOutOfSync", { id: img, epoch: 2, nodeId: 2, fullHeal: false })).toMatchObject({ ok: false, code: "quorum" });
    expect(run("storage.image.replicaOutOfSync", { id: img, epoch: 2, nodeId: 4, fullHeal: false })).toMatchObject({ ok: false, code: "not_found", field: "nodeId" });
    // Already out of sync: a repeat changes nothing; asking for a full heal widens it (a change of the set).
    expect(run("storage.image.replicaOutOfSync", { id: img, epoch: 2, nodeId: 3, fullHeal: false })).toEqual({ ok: true, generation: 2 });
    expect(run("storage.image.replicaOutOfSync", { id: img, epoch: 2, nodeId: 3, fullHeal: true })).toEqual({ ok: true, generation: 3 });
    expect(getImage(db, img)!.replicas.map((r) => [r.nodeId, r.inSync, r.fullHeal])).toEqual([[1, true, false], [2, true, false], [3, false, true]]);
  });

  it("records heal progress of an out-of-sync replica and brings it back in sync from the current epoch", () => {
    const { db, run } = withImage();
    run("storage.image.acquireWriter", { id: img, nodeId: 1 });
    expect(run("storage.image.healProgress", { id: img, epoch: 1, nodeId: 2, doneBytes: 1, totalBytes: 2 })).toMatchObject({ ok: false, code: "failed_precondition" });
    run("storage.image.replicaOutOfSync", { id: img, epoch: 1, nodeId: 2, fullHeal: true, reason: "brick full (ENOSPC)" });
    expect(run("storage.image.healProgress", { id: img, epoch: 1, nodeId: 2, doneBytes: 64, totalBytes: 128 })).toEqual({ ok: true });
    expect(getImage(db, img)!.replicas[1]).toEqual({ nodeId: 2, inSync: false, fullHeal: true, healDoneBytes: 64, healTotalBytes: 128, reason: "brick full (ENOSPC)", dirtyRanges: null });
    expect(() => storageModule.commands["storage.image.healProgress"]!.validate({ id: img, epoch: 1, nodeId: 2, doneBytes: 3, totalBytes: 2 })).toThrow(/doneBytes/);
    run("storage.image.acquireWriter", { id: img, nodeId: 3 });
    expect(run("storage.image.healProgress", { id: img, epoch: 1, nodeId: 2, doneBytes: 128, totalBytes: 128 })).toMatchObject({ ok: false, code: "stale_epoch" });
    expect(run("storage.image.replicaInSync", { id: img, epoch: 1, nodeId: 2 })).toMatchObject({ ok: false, code: "stale_epoch" });
    expect(getImage(db, img)!.replicas[1]!.inSync).toBe(false);
    expect(run("storage.image.replicaInSync", { id: img, epoch: 2, nodeId: 2 })).toEqual({ ok: true, generation: 3 });
    expect(getImage(db, img)!.replicas[1]).toEqual({ nodeId: 2, inSync: true, fullHeal: false, healDoneBytes: 0, healTotalBytes: 0, reason: "", dirtyRanges: null });
    expect(run("storage.image.replicaInSync", { id: img, epoch: 2, nodeId: 2 })).toEqual({ ok: true, generation: 3 });
  });

  it("keeps the dirty ranges of out-of-sync replicas across a clean release, checks them naming the field, clears them in sync", () => {
    const { db, run } = withImage();
    const v = storageModule.commands["storage.image.releaseWriter"]!.validate;
    expect(() => v({ id: img, epoch: 1, dirty: [{ nodeId: 2, ranges: [[0, 0]] }] })).toThrow(/field "dirty\[0\]\.ranges\[0\]"/);
    expect(() => v({ id: img, epoch: 1, dirty: [{ nodeId: 2, ranges: [[-1, 5]] }] })).toThrow(/dirty\[0\]\.ranges\[0\]/);
    expect(() => v({ id: img, epoch: 1, dirty: [{ nodeId: 0, ranges: [] }] })).toThrow(/dirty\[0\]\.nodeId/);
    expect(() => v({ id: img, epoch: 1, dirty: [{ nodeId: 2, ranges: Array.from({ length: 4097 }, (_, i) => [i * 2, 1]) }] })).toThrow(/at most 4096/);
    expect(() => v({ id: img, epoch: 1, dirty: "x" })).toThrow(/field "dirty"/);
    run("storage.image.acquireWriter", { id: img, nodeId: 1 });
    run("storage.image.replicaOutOfSync", { id: img, epoch: 1, nodeId: 2, fullHeal: false, reason: "not answering" });
    // Node 3 is in sync: a range given for it is not kept; one past the image end is cut off.
    const dirty = [{ nodeId: 2, ranges: [[65536, 131072], [GiB - 4096, 65536], [GiB + 1, 5]] }, { nodeId: 3, ranges: [[0, 4096]] }];
    expect(run("storage.image.releaseWriter", { id: img, epoch: 1, dirty })).toEqual({ ok: true, released: true });
    expect(getImage(db, img)!.replicas.map((r) => r.dirtyRanges)).toEqual([null, [[65536, 131072], [GiB - 4096, 4096]], null]);
    expect(run("storage.image.acquireWriter", { id: img, nodeId: 3 })).toMatchObject({ epoch: 2, previousClean: true });
    expect(run("storage.image.replicaInSync", { id: img, epoch: 2, nodeId: 2 })).toMatchObject({ ok: true });
    expect(getImage(db, img)!.replicas[1]!.dirtyRanges).toBeNull();
    // A release without the field leaves nothing to resume.
    run("storage.image.replicaOutOfSync", { id: img, epoch: 2, nodeId: 2, fullHeal: false, reason: "not answering" });
    expect(run("storage.image.releaseWriter", { id: img, epoch: 2 })).toEqual({ ok: true, released: true });
    expect(getImage(db, img)!.replicas[1]!.dirtyRanges).toBeNull();
  });

  it("uses the volume's replica count for the quorum: one replica can never leave, two of two cannot lose one", () => {
    for (const replicaCount of [1, 2]) {
      const { run } = withImage(replicaCount);
      run("storage.image.acquireWriter", { id: img, nodeId: 1 });
      expect(run("storage.image.replicaOutOfSync", { id: img, epoch: 1, nodeId: 1, fullHeal: false })).toMatchObject({ ok: false, code: "quorum" });
    }
  });

  it("applies deterministically: replaying the same commands into another database gives the same tables", () => {
    const a = withImage();
    a.run("storage.image.acquireWriter", { id: img, nodeId: 1 });
    a.run("storage.image.replicaOutOfSync", { id: img, epoch: 1, nodeId: 2, fullHeal: true });
    a.run("storage.image.healProgress", { id: img, epoch: 1, nodeId: 2, doneBytes: 5, totalBytes: 10 });
    a.run("storage.image.resize", { id: img, sizeBytes: 4 * GiB });
    const b = open();
    for (const [name, payload] of a.log) b.run(name, payload);
    const dump = (db: Database.Database) => ["storage_volumes", "storage_bricks", "storage_images", "storage_replicas"].map((t) => db.prepare(`SELECT * FROM ${t} ORDER BY 1, 2`).all());
    expect(dump(b.db)).toEqual(dump(a.db));
    expect(dump(a.db)[3]).toHaveLength(3);
  });
});

describe("storage module: replica 2 + arbiter", () => {
  const pair = [{ nodeId: 1, path: "" }, { nodeId: 2, path: "" }];

  function withArbiterImage() {
    const s = open();
    expect(s.run("storage.volume.create", { id: vol, name: "arb", replicaCount: 2, arbiter: true, bricks: pair })).toEqual({ ok: true, id: vol });
    expect(s.run("storage.image.create", { id: img, volumeId: vol, name: "disk1", kind: "disk", format: "raw", sizeBytes: GiB, state: "ready" })).toEqual({ ok: true, id: img });
    return s;
  }

  it("takes an arbiter only with two replicas, naming the field", () => {
    const v = storageModule.commands["storage.volume.create"]!.validate;
    expect(() => v({ id: vol, name: "arb", replicaCount: 3, arbiter: true, bricks: bricks3 })).toThrow(/field "arbiter" goes with replicaCount 2 only \(got 3\)/);
    expect(() => v({ id: vol, name: "arb", replicaCount: 1, arbiter: true, bricks: [pair[0]] })).toThrow(/field "arbiter" goes with replicaCount 2 only \(got 1\)/);
    expect(() => v({ id: vol, name: "arb", replicaCount: 2, arbiter: "yes", bricks: pair })).toThrow(/field "arbiter" must be true or false/);
    const ok = withArbiterImage();
    expect(getVolumeByName(ok.db, "arb")).toMatchObject({ replicaCount: 2, arbiter: true });
    expect(ok.run("storage.volume.create", { id: uuid(101), name: "plain", replicaCount: 2, bricks: pair })).toEqual({ ok: true, id: uuid(101) });
    expect(getVolumeByName(ok.db, "plain")!.arbiter).toBe(false);
  });

  it("keeps writing on one copy: the other leaves the in-sync set through the current epoch, the last one never", () => {
    const { db, run } = withArbiterImage();
    expect(run("storage.image.acquireWriter", { id: img, nodeId: 1 })).toMatchObject({ ok: true, epoch: 1 });
    expect(run("storage.image.replicaOutOfSync", { id: img, epoch: 1, nodeId: 2, fullHeal: false, reason: "timeout" })).toEqual({ ok: true, generation: 2 });
    expect(getImage(db, img)!.replicas.map((r) => [r.nodeId, r.inSync])).toEqual([[1, true], [2, false]]);
    expect(run("storage.image.replicaOutOfSync", { id: img, epoch: 1, nodeId: 1, fullHeal: false })).toMatchObject({ ok: false, code: "quorum", field: "nodeId" });
    // Node 2 takes over (node 1 is gone): its own copy is stale, and it cannot drop node 1's, the
    // only one holding every acknowledged write; node 1, superseded, can no longer change the set.
    expect(run("storage.image.acquireWriter", { id: img, nodeId: 2 })).toMatchObject({ ok: true, epoch: 2, previousClean: false });
    expect(run("storage.image.replicaOutOfSync", { id: img, epoch: 2, nodeId: 1, fullHeal: true })).toMatchObject({ ok: false, code: "quorum" });
    expect(run("storage.image.replicaInSync", { id: img, epoch: 1, nodeId: 2 })).toMatchObject({ ok: false, code: "stale_epoch" });
    expect(getImage(db, img)!.replicas.map((r) => [r.nodeId, r.inSync])).toEqual([[1, true], [2, false]]);
    expect(run("storage.image.replicaInSync", { id: img, epoch: 2, nodeId: 2 })).toEqual({ ok: true, generation: 3 });
    expect(run("storage.image.replicaOutOfSync", { id: img, epoch: 2, nodeId: 1, fullHeal: false })).toEqual({ ok: true, generation: 4 });
  });

  it("gives volumes of a database migrated from before the arbiter no arbiter", () => {
    const db = new Database(":memory:");
    const before = allMigrations().filter((m) => m.version <= 7);
    migrate(db, before);
    db.prepare("INSERT INTO nodes (id, name, address, role, added_index) VALUES (1, 'n1', 'a', 'voter', 0)").run();
    db.prepare("INSERT INTO storage_volumes (id, name, replica_count, created_at_ms) VALUES (?, 'old', 1, 5)").run(vol);
    expect(migrate(db)).toEqual({ from: 7, to: allMigrations().length });
    expect(getVolumeByName(db, "old")).toMatchObject({ replicaCount: 1, arbiter: false, createdAtMs: 5 });
  });
});
