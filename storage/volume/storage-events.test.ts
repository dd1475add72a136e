// The storage event diff over real records: the storage module's commands are applied to an
// in-memory state database and each reading is diffed, as the node's event sources do every
// poll. Checks the first reading is a silent baseline; image created / ready (also for one created
// ready) / deleted; a replica
// out of sync with its reason and back in sync; heal progress throttled per replica, with the
// held-back value published once the interval has passed; and changes that cancel out between
// two readings publish nothing.
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { migrate } from "../../core/state/migrations.ts";
import type { ApplyContext } from "../../core/state/modules.ts";
import { listImages, listVolumes, storageModule } from "./storage-module.ts";
import { StorageEventDiff, type StorageView } from "./storage-events.ts";

const uuid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;
const vol = uuid(100);
const img = uuid(200);
const MiB = 1024 ** 2;

function cluster() {
  const db = new Database(":memory:");
  migrate(db);
  for (const id of [1, 2, 3]) db.prepare("INSERT INTO nodes (id, name, address, role, added_index) VALUES (?, ?, ?, 'voter', 0)").run(id, `n${id}`, `127.0.0.1:${7000 + id}`);
  let index = 0;
  const run = (name: string, payload: unknown) => {
    const spec = storageModule.commands[name]!;
    const ctx: ApplyContext = { db, index: ++index, atMs: 1000 + index, clientId: "c", prepare: (sql) => db.prepare(sql) };
    const r = db.transaction(() => spec.apply(ctx, spec.validate(payload)))();
    expect(r, `${name} ${JSON.stringify(payload)}`).toMatchObject({ ok: true });
  };
  const view = (): StorageView => ({
    images: listImages(db),
    volumeNames: new Map(listVolumes(db).map((v) => [v.id, v.name])),
    nodeNames: new Map([[1, "n1"], [2, "n2"], [3, "n3"]]),
  });
  run("storage.volume.create", { id: vol, name: "vol1", replicaCount: 3, bricks: [1, 2, 3].map((nodeId) => ({ nodeId, path: "" })) });
  return { run, view };
}

const summary = (events: Array<{ kind: string; object: string; fields: Record<string, string> }>) =>
  events.map((e) => `${e.kind} ${e.object} ${e.fields.change ?? ""}${e.fields.inSync ?? ""}${e.fields.percent ?? ""}${e.fields.node ? ` ${e.fields.node}` : ""}`.trim());

describe("storage event diff", () => {
  it("takes the first reading as the baseline, then publishes created, ready and deleted", () => {
    const { run, view } = cluster();
    const diff = new StorageEventDiff();
    run("storage.image.create", { id: uuid(1), volumeId: vol, name: "old", sizeBytes: MiB, state: "ready" });
    expect(diff.step(view(), 0)).toEqual([]);
    run("storage.image.create", { id: img, volumeId: vol, name: "debian.iso", kind: "iso", sizeBytes: 5 * MiB, state: "uploading" });
    const created = diff.step(view(), 250);
    expect(created).toEqual([{
      kind: "storage.image", object: "image/vol1/debian.iso", message: "image vol1/debian.iso created (iso, 5 MiB, uploading)",
      fields: { change: "created", volume: "vol1", image: "debian.iso", imageId: img, kind: "iso", format: "raw", sizeBytes: String(5 * MiB), state: "uploading" },
    }]);
    expect(diff.step(view(), 500)).toEqual([]);
    run("storage.image.setState", { id: img, state: "ready" });
    expect(summary(diff.step(view(), 750))).toEqual(["storage.image image/vol1/debian.iso ready"]);
    run("storage.image.delete", { id: img });
    run("storage.image.delete", { id: uuid(1) });
    const deleted = diff.step(view(), 1000);
    expect(summary(deleted)).toEqual(["storage.image image/vol1/debian.iso deleted", "storage.image image/vol1/old deleted"]);
    expect(deleted[0]!.message).toBe("image vol1/debian.iso deleted");
    expect(diff.step(view(), 1250)).toEqual([]);
    // Created ready (or uploaded between two readings): created, then ready.
    run("storage.image.create", { id: uuid(2), volumeId: vol, name: "disk2", sizeBytes: MiB, state: "ready" });
    expect(summary(diff.step(view(), 1500))).toEqual(["storage.image image/vol1/disk2 created", "storage.image image/vol1/disk2 ready"]);
  });

  it("publishes a replica falling out of sync with its reason, its heal progress, and its return", () => {
    const { run, view } = cluster();
    run("storage.image.create", { id: img, volumeId: vol, name: "disk1", sizeBytes: 100 * MiB, state: "ready" });
    run("storage.image.acquireWriter", { id: img, nodeId: 1 });
    const diff = new StorageEventDiff(1_000);
    diff.step(view(), 0);
    run("storage.image.replicaOutOfSync", { id: img, epoch: 1, nodeId: 2, reason: "brick full (ENOSPC)" });
    const out = diff.step(view(), 250);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({
      kind: "storage.replica", object: "image/vol1/disk1", message: "replica of image vol1/disk1 on node n2 is out of sync: brick full (ENOSPC)",
      fields: { volume: "vol1", image: "disk1", node: "n2", nodeId: "2", inSync: "false", reason: "brick full (ENOSPC)", generation: "2" },
    });
    run("storage.image.healProgress", { id: img, epoch: 1, nodeId: 2, doneBytes: 10 * MiB, totalBytes: 40 * MiB });
    const first = diff.step(view(), 500);
    expect(first.map((e) => e.message)).toEqual(["healing the replica of image vol1/disk1 on node n2: 10 MiB of 40 MiB (25%)"]);
    expect(first[0]!.fields).toMatchObject({ doneBytes: String(10 * MiB), totalBytes: String(40 * MiB), percent: "25" });
    // Within the interval: held back, and the diff says so.
    run("storage.image.healProgress", { id: img, epoch: 1, nodeId: 2, doneBytes: 20 * MiB, totalBytes: 40 * MiB });
    expect(diff.step(view(), 750)).toEqual([]);
    expect(diff.pending).toBe(true);
    run("storage.image.healProgress", { id: img, epoch: 1, nodeId: 2, doneBytes: 30 * MiB, totalBytes: 40 * MiB });
    expect(diff.step(view(), 1250)).toEqual([]);
    // The latest value goes out once the interval has passed, even with no new change.
    expect(summary(diff.step(view(), 1500))).toEqual(["storage.heal image/vol1/disk1 75 n2"]);
    expect(diff.pending).toBe(false);
    expect(diff.step(view(), 5000)).toEqual([]);
    run("storage.image.replicaInSync", { id: img, epoch: 1, nodeId: 2 });
    const back = diff.step(view(), 5250);
    expect(back.map((e) => e.message)).toEqual(["replica of image vol1/disk1 on node n2 is back in sync"]);
    expect(back[0]!.fields).toMatchObject({ inSync: "true", generation: "3" });
  });

  it("throttles heal events per replica, not across replicas", () => {
    const { run, view } = cluster();
    run("storage.image.create", { id: img, volumeId: vol, name: "disk1", sizeBytes: 100 * MiB, state: "ready" });
    run("storage.image.acquireWriter", { id: img, nodeId: 1 });
    const diff = new StorageEventDiff(1_000);
    diff.step(view(), 0);
    run("storage.image.replicaOutOfSync", { id: img, epoch: 1, nodeId: 2, reason: "timeout" });
    expect(summary(diff.step(view(), 100))).toEqual(["storage.replica image/vol1/disk1 false n2"]);
    run("storage.image.healProgress", { id: img, epoch: 1, nodeId: 2, doneBytes: 1 * MiB, totalBytes: 4 * MiB });
    expect(summary(diff.step(view(), 200))).toEqual(["storage.heal image/vol1/disk1 25 n2"]);
    run("storage.volume.create", { id: uuid(101), name: "vol2", replicaCount: 3, bricks: [1, 2, 3].map((nodeId) => ({ nodeId, path: "" })) });
    run("storage.image.create", { id: uuid(201), volumeId: uuid(101), name: "disk2", sizeBytes: 100 * MiB, state: "ready" });
    run("storage.image.acquireWriter", { id: uuid(201), nodeId: 1 });
    expect(summary(diff.step(view(), 300))).toEqual(["storage.image image/vol2/disk2 created", "storage.image image/vol2/disk2 ready"]);
    run("storage.image.replicaOutOfSync", { id: uuid(201), epoch: 1, nodeId: 3, reason: "timeout" });
    run("storage.image.healProgress", { id: uuid(201), epoch: 1, nodeId: 3, doneBytes: 2 * MiB, totalBytes: 4 * MiB });
    run("storage.image.healProgress", { id: img, epoch: 1, nodeId: 2, doneBytes: 2 * MiB, totalBytes: 4 * MiB });
    expect(summary(diff.step(view(), 400))).toEqual(["storage.replica image/vol2/disk2 false n3", "storage.heal image/vol2/disk2 50 n3"]);
  });

  it("publishes nothing for a change undone between two readings, and reads a baseline heal as already published", () => {
    const { run, view } = cluster();
    run("storage.image.create", { id: img, volumeId: vol, name: "disk1", sizeBytes: 100 * MiB, state: "ready" });
    run("storage.image.acquireWriter", { id: img, nodeId: 1 });
    run("storage.image.replicaOutOfSync", { id: img, epoch: 1, nodeId: 3, reason: "timeout" });
    run("storage.image.healProgress", { id: img, epoch: 1, nodeId: 3, doneBytes: MiB, totalBytes: 2 * MiB });
    const diff = new StorageEventDiff(1_000);
    expect(diff.step(view(), 0)).toEqual([]);
    expect(diff.pending).toBe(false);
    expect(diff.step(view(), 5_000)).toEqual([]);
    run("storage.image.create", { id: uuid(9), volumeId: vol, name: "brief", sizeBytes: MiB, state: "ready" });
    run("storage.image.delete", { id: uuid(9) });
    expect(diff.step(view(), 5_250)).toEqual([]);
  });
});
