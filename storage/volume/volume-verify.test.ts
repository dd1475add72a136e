// Volume verify's judgement of each image, with a fake per-image verify: images are verified one
// at a time; uploading images and images with a single in-sync replica are skipped without a
// read; differing chunks name the nodes and say when no copy holds a majority; an unreadable
// replica or a failing verify leaves the image unverified (and the volume not consistent); a
// cancelled request stops before the next image.
import { describe, expect, it } from "vitest";
import type { VerifyImageResult } from "./image-service.ts";
import type { ImageRecord } from "./model.ts";
import { judgeImage, verifyImages } from "./volume-verify.ts";

const MiB = 1024 * 1024;

function image(name: string, more: Partial<ImageRecord> = {}, inSync = [true, true, true]): ImageRecord {
  return {
    id: `id-${name}`, volumeId: "v", name, kind: "disk", format: "raw", sizeBytes: 10 * MiB + 512, state: "ready", generation: 1,
    writerEpoch: 0, writerNodeId: null, writerClean: true, createdAtMs: 0,
    replicas: inSync.map((s, k) => ({ nodeId: k + 1, inSync: s, fullHeal: false, healDoneBytes: 0, healTotalBytes: 0, reason: "", dirtyRanges: null })),
    ...more,
  };
}

const ok = (nodeId: number) => ({ nodeId, ok: true, error: "" });
const clean = (nodes: number[]): VerifyImageResult => ({ chunkBytes: MiB, replicas: nodes.map(ok), mismatches: [] });

describe("volume verify", () => {
  it("verifies ready images one at a time and skips what has nothing to compare", async () => {
    let inFlight = 0;
    let inFlightMax = 0;
    const asked: string[] = [];
    const answers: Record<string, VerifyImageResult> = {
      "id-a": clean([1, 2, 3]),
      "id-b": { chunkBytes: MiB, replicas: [ok(1), ok(2), ok(3)], mismatches: [{ offset: 2 * MiB, nodes: [3] }, { offset: 7 * MiB, nodes: [1] }] },
    };
    const verify = async (id: string) => {
      asked.push(id);
      inFlightMax = Math.max(inFlightMax, ++inFlight);
      await new Promise((r) => setImmediate(r));
      inFlight--;
      return answers[id]!;
    };
    const images = [image("a"), image("b"), image("up", { state: "uploading" }), image("solo", {}, [false, true])];
    const r = await verifyImages(images, verify);
    expect(asked).toEqual(["id-a", "id-b"]);
    expect(inFlightMax).toBe(1);
    expect(r.chunkBytes).toBe(MiB);
    expect(r.images.map((i) => [i.name, i.result])).toEqual([["a", "consistent"], ["b", "differs"], ["up", "skipped"], ["solo", "skipped"]]);
    expect(r.images[0]).toMatchObject({ reason: "", chunksCompared: 11, mismatches: [] });
    expect(r.images[1]).toMatchObject({ reason: "2 chunk(s) differ", mismatches: [{ offset: 2 * MiB, nodes: [3], noMajority: false }, { offset: 7 * MiB, nodes: [1], noMajority: false }] });
    expect(r.images[2]!.reason).toMatch(/^uploading/);
    expect(r.images[3]!.reason).toBe("only node 2's replica is in sync: nothing to compare it with");
    expect(r.consistent).toBe(false);
    expect((await verifyImages([image("a"), image("up", { state: "uploading" })], verify)).consistent).toBe(true);
  });

  it("says when two copies differ and neither holds a majority", () => {
    const two = image("pair", {}, [true, true]);
    const r = judgeImage(two, { chunkBytes: MiB, replicas: [ok(1), ok(2)], mismatches: [{ offset: 0, nodes: [2] }] });
    expect(r).toMatchObject({ result: "differs", mismatches: [{ offset: 0, nodes: [2], noMajority: true }] });
    const three = judgeImage(image("all"), { chunkBytes: MiB, replicas: [ok(1), ok(2), ok(3)], mismatches: [{ offset: MiB, nodes: [2, 3] }] });
    expect(three.mismatches).toEqual([{ offset: MiB, nodes: [2, 3], noMajority: true }]);
  });

  it("leaves an image unverified when a replica cannot be read or the verify fails", async () => {
    const unread = { chunkBytes: MiB, replicas: [ok(1), ok(2), { nodeId: 3, ok: false, error: "connection refused" }], mismatches: [] };
    expect(judgeImage(image("x"), unread)).toMatchObject({ result: "unverified", reason: "the 2 replicas read agree; not read: node 3: connection refused", chunksCompared: 11 });
    const lone = { chunkBytes: MiB, replicas: [ok(1), { nodeId: 2, ok: false, error: "timeout" }, { nodeId: 3, ok: false, error: "EIO" }], mismatches: [] };
    expect(judgeImage(image("x"), lone)).toMatchObject({ result: "unverified", reason: "only one in-sync replica reachable, nothing to compare it with (node 2: timeout; node 3: EIO)", chunksCompared: 0 });
    const none = { chunkBytes: MiB, replicas: [{ nodeId: 1, ok: false, error: "EIO" }], mismatches: [] };
    expect(judgeImage(image("x"), none).reason).toBe("no in-sync replica reachable (node 1: EIO)");
    const r = await verifyImages([image("boom"), image("fine")], async (id) => {
      if (id === "id-boom") throw new Error("checksums from node 2 at 0: stale_epoch");
      return clean([1, 2, 3]);
    });
    expect(r.images.map((i) => [i.name, i.result, i.reason])).toEqual([["boom", "unverified", "verifying failed: checksums from node 2 at 0: stale_epoch"], ["fine", "consistent", ""]]);
    expect(r.consistent).toBe(false);
  });

  it("stops verifying once the request is cancelled", async () => {
    const ac = new AbortController();
    const asked: string[] = [];
    const r = await verifyImages([image("a"), image("b"), image("c")], async (id) => {
      asked.push(id);
      ac.abort();
      return clean([1, 2, 3]);
    }, ac.signal);
    expect(asked).toEqual(["id-a"]);
    expect(r.images.map((i) => i.result)).toEqual(["consistent", "unverified", "unverified"]);
    expect(r.images[1]!.reason).toMatch(/cancelled/);
  });
});
