// Volumes and images on a cluster of three real daemons, through the CLI and the API: a volume
// gets one brick on each node (default paths), every node reads the same records; an image is
// created, grown, listed, shown and deleted from the CLI; bad input (bad name, shrink, unknown
// volume, size not a multiple of 512) is refused naming the field and changes nothing; an
// Auditor and an Operator can read but cannot create. `volume verify` finds a clean volume clean,
// then names the image, chunk and node of a replica corrupted on disk, and exits 1. A replica 2 +
// arbiter volume is created and shown; an arbiter with 3 replicas is refused naming the field;
// with one of its data nodes killed, writes go on on the other copy (a plain replica 2 volume
// refuses them), the dead copy marked out of sync, and verify skips the image.
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ApiClient } from "../../core/api/client.ts";
import { AuthService, CredentialKind } from "../../core/api/gen/trivet/v1/auth_pb.ts";
import { ImageService, VolumeService } from "../../core/api/gen/trivet/v1/storage_pb.ts";
import { Role, UserService } from "../../core/api/gen/trivet/v1/users_pb.ts";
import { ApiError } from "../../core/api/server/errors.ts";
import { cli, DaemonCluster, type DaemonNode } from "../cluster/daemon-cluster.ts";
import { expectApiError } from "../api/expect-api-error.ts";

/** A mutation made through one node is read from another's local replica within this. */
const replicationWaitMs = 10_000;
/** The coordinator lets go of an uploaded image once idle (about 2 s). */
const writerReleaseWaitMs = 15_000;
const GiB = 1024n ** 3n;
const MiB = 1024 * 1024;

describe("volumes and images on a three-daemon cluster", () => {
  const c = new DaemonCluster();
  const nodes: DaemonNode[] = [];
  let api: ApiClient;
  let conn: string[];

  beforeAll(async () => {
    nodes.push(...(await c.startThree()));
    api = c.client(nodes[1]!, { linearizable: true });
    conn = c.conn(nodes[2]!);
  });

  afterAll(async () => {
    api?.close();
    await c.stop();
  });

  it("creates a volume with a brick on each of the three nodes, seen from every node", async () => {
    const created = cli(["volume", "create", "vol1", "--output", "json", ...conn]);
    expect(created.code, created.stderr).toBe(0);
    const v = (JSON.parse(created.stdout) as { volume: { name: string; replicaCount: number; bricks: Array<{ nodeName: string; path: string; reportedAtMs: number }> } }).volume;
    expect(v).toMatchObject({ name: "vol1", replicaCount: 3 });
    expect(v.bricks.map((b) => [b.nodeName, b.path])).toEqual([["n1", ""], ["n2", ""], ["n3", ""]]);
    for (const n of nodes) {
      const local = c.client(n);
      try {
        const got = await DaemonCluster.retry(() => local.call(VolumeService, "getVolume", { name: "vol1" }), replicationWaitMs);
        expect(got.volume?.bricks.map((b) => b.nodeName)).toEqual(["n1", "n2", "n3"]);
      } finally {
        local.close();
      }
    }
    const table = cli(["volume", "list", ...conn]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/^NAME\s+REPLICAS\s+IMAGES\s+NODES\s+USED\s+CAPACITY\nvol1\s+3\s+0\s+n1,n2,n3\s/);
    const shown = cli(["volume", "show", "vol1", ...conn]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout.match(/^n[123]\s+\(default: <data dir>\/bricks\/<volume>\)/gm)).toHaveLength(3);
  });

  it("creates, grows, lists, shows and deletes an image from the CLI", async () => {
    const created = cli(["image", "create", "disk1", "--volume", "vol1", "--size", "1G", ...conn]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toBe("image disk1 created on volume vol1 (1 GiB, raw)\n");
    const resized = cli(["image", "resize", "disk1", "--volume", "vol1", "--size", "1536M", ...conn]);
    expect(resized.code, resized.stderr).toBe(0);
    expect(resized.stdout).toBe("image disk1 is now 1.5 GiB\n");
    const listed = cli(["image", "list", "--volume", "vol1", "--output", "json", ...conn]);
    expect(listed.code, listed.stderr).toBe(0);
    const images = (JSON.parse(listed.stdout) as { images: Array<{ name: string; sizeBytes: number; replicas: Array<{ nodeName: string; inSync: boolean }> }> }).images;
    expect(images.map((i) => [i.name, i.sizeBytes])).toEqual([["disk1", 1536 * 1024 * 1024]]);
    expect(images[0]!.replicas.map((r) => [r.nodeName, r.inSync])).toEqual([["n1", true], ["n2", true], ["n3", true]]);
    const shown = cli(["image", "show", "disk1", "--volume", "vol1", ...conn]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/vol1\s+disk1\s+disk\s+raw\s+1\.5 GiB\s+ready\s+3\/3\s+-/);
    const fromApi = await api.call(ImageService, "getImage", { volume: "vol1", name: "disk1" });
    expect(fromApi.image).toMatchObject({ sizeBytes: 1536n * 1024n * 1024n, generation: 1n, writerEpoch: 0n, writerClean: true });
    const busy = cli(["volume", "delete", "vol1", ...conn]);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toMatch(/still has 1 image/);
    const deleted = cli(["image", "delete", "disk1", "--volume", "vol1", ...conn]);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect((await api.call(ImageService, "listImages", { volume: "vol1" })).images).toEqual([]);
  });

  it("verifies a volume: clean, then names the image, chunk and node of a replica corrupted on disk", async () => {
    const ref = { volume: "vol1", name: "vdisk" };
    await api.call(ImageService, "createImage", { ...ref, sizeBytes: BigInt(4 * MiB), kind: "template", upload: true });
    const content = Buffer.alloc(4 * MiB);
    for (let k = 0; k < content.length; k += 4) content.writeUInt32LE((k * 2654435761) >>> 0, k);
    // Each node's storage agent makes its file shortly after the create commits.
    const write = (at: number) => api.call(ImageService, "writeImageContent", { ...ref, offset: BigInt(at), data: content.subarray(at, at + 2 * MiB) });
    await DaemonCluster.retry(() => write(0), replicationWaitMs);
    await write(2 * MiB);
    const image = (await api.call(ImageService, "finishImageUpload", ref)).image!;
    await DaemonCluster.retry(async () => {
      const now = (await api.call(ImageService, "getImage", ref)).image!;
      if (now.writerNodeName !== "") throw new Error(`node ${now.writerNodeName} still holds ${ref.name}`);
    }, writerReleaseWaitMs);

    const clean = cli(["volume", "verify", "vol1", ...conn]);
    expect(clean.code, clean.stderr).toBe(0);
    expect(clean.stdout).toMatch(/^IMAGE\s+RESULT\s+COMPARED\s+CHUNKS\s+DIFFERING\s+REASON\nvdisk\s+consistent\s+n1,n2,n3\s+4\s+0\s+-\n/);
    expect(clean.stdout).toMatch(/volume vol1: 1 image\(s\) consistent, 0 skipped\n$/);

    // Flip bytes inside the fourth 1 MiB chunk of n3's copy, behind the storage layer's back.
    const file = path.join(nodes[2]!.dataDir, "bricks", "vol1", "images", `${image.id}.raw`);
    const at = 3 * MiB + 4096;
    const fd = fs.openSync(file, "r+");
    try {
      const onDisk = Buffer.alloc(16);
      expect(fs.readSync(fd, onDisk, 0, 16, at)).toBe(16);
      expect(onDisk.equals(content.subarray(at, at + 16))).toBe(true);
      fs.writeSync(fd, onDisk.map((b) => b ^ 0xff), 0, 16, at);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    const json = cli(["volume", "verify", "vol1", "--output", "json", ...conn]);
    expect(json.code, json.stderr).toBe(1);
    expect(json.stderr).toMatch(/volume vol1: 1 image\(s\) differ, 0 could not be verified/);
    const r = JSON.parse(json.stdout) as { consistent: boolean; chunkBytes: number; images: Array<{ name: string; result: string; chunksCompared: number; mismatches: Array<{ offset: number; nodeNames: string[]; noMajority: boolean }> }> };
    expect(r).toMatchObject({ consistent: false, chunkBytes: MiB });
    expect(r.images.map((i) => [i.name, i.result, i.chunksCompared])).toEqual([["vdisk", "differs", 4]]);
    expect(r.images[0]!.mismatches.map((m) => [m.offset, m.nodeNames, m.noMajority])).toEqual([[3 * MiB, ["n3"], false]]);
    const table = cli(["volume", "verify", "vol1", ...conn]);
    expect(table.code).toBe(1);
    expect(table.stdout).toMatch(/^vdisk\s+differs\s+n1,n2,n3\s+4\s+1\s+1 chunk\(s\) differ$/m);
    expect(table.stdout).toMatch(/^image vdisk: chunk at offset 3145728 \(1 MiB\) differs on node\(s\) n3$/m);
    await api.call(ImageService, "deleteImage", ref);
  });

  it("creates a replica 2 + arbiter volume, and refuses an arbiter with three replicas naming the field", async () => {
    const bad = cli(["volume", "create", "arb", "--replicas", "3", "--arbiter", ...conn]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/field "arbiter": an arbiter goes with replica_count 2 only \(got 3\)/);
    const created = cli(["volume", "create", "arb", "--replicas", "2", "--arbiter", ...conn]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toBe("volume arb created: 2 replicas + arbiter on n1, n2\n");
    const shown = cli(["volume", "show", "arb", ...conn]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/^arb\s+2\+arbiter\s+0\s+n1,n2\s/m);
    expect((await api.call(VolumeService, "getVolume", { name: "arb" })).volume).toMatchObject({ replicaCount: 2, arbiter: true });
    const deleted = cli(["volume", "delete", "arb", ...conn]);
    expect(deleted.code, deleted.stderr).toBe(0);
  });

  it("refuses bad input naming the field and changes nothing", async () => {
    await api.call(ImageService, "createImage", { volume: "vol1", name: "keep", sizeBytes: 2n * GiB });
    const snapshot = async () => JSON.stringify((await api.call(ImageService, "listImages", {})).images, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v));
    const before = await snapshot();
    await expectApiError(api.call(VolumeService, "createVolume", { name: "Bad_Name" }), "invalid_argument", "name");
    await expectApiError(api.call(ImageService, "createImage", { volume: "vol1", name: "bad name", sizeBytes: GiB }), "invalid_argument", "name");
    const shrink = await expectApiError(api.call(ImageService, "resizeImage", { volume: "vol1", name: "keep", sizeBytes: GiB }), "invalid_argument", "size_bytes");
    expect(shrink.message).toMatch(/can only grow/);
    await expectApiError(api.call(ImageService, "createImage", { volume: "nope", name: "x", sizeBytes: GiB }), "not_found", "volume");
    const odd = await expectApiError(api.call(ImageService, "createImage", { volume: "vol1", name: "odd", sizeBytes: GiB + 100n }), "invalid_argument", "size_bytes");
    expect(odd.message).toMatch(/multiple of 512/);
    await expectApiError(api.call(VolumeService, "createVolume", { name: "vol2", replicaCount: 4 }), "invalid_argument", "replica_count");
    const cliOdd = cli(["image", "create", "odd", "--volume", "vol1", "--size", "1000", ...conn]);
    expect(cliOdd.code).toBe(1);
    expect(cliOdd.stderr).toMatch(/field "size_bytes": must be a multiple of 512/);
    const cliShrink = cli(["image", "resize", "keep", "--volume", "vol1", "--size", "1G", ...conn]);
    expect(cliShrink.code).toBe(1);
    expect(cliShrink.stderr).toMatch(/size_bytes/);
    const cliBadSize = cli(["image", "create", "x", "--volume", "vol1", "--size", "ten", ...conn]);
    expect(cliBadSize.code).toBe(2);
    expect(await snapshot()).toBe(before);
    expect((await api.call(VolumeService, "listVolumes", {})).volumes.map((v) => v.name)).toEqual(["vol1"]);
  });

  it("lets an Auditor and an Operator read volumes and images but not create them", async () => {
    for (const [username, role] of [["aud1", Role.AUDITOR], ["op1", Role.OPERATOR]] as const) {
      const password = `${username}-password-123`;
      await api.call(UserService, "createUser", { username, password, role });
      const anon = c.client(nodes[0]!, { token: "" });
      const login = await anon.call(AuthService, "login", { username, password, kind: CredentialKind.TOKEN, tokenName: "t" });
      anon.close();
      const user = c.client(nodes[0]!, { token: login.apiToken, linearizable: true });
      try {
        expect((await user.call(VolumeService, "listVolumes", {})).volumes.map((v) => v.name)).toEqual(["vol1"]);
        expect((await user.call(ImageService, "getImage", { volume: "vol1", name: "keep" })).image?.sizeBytes).toBe(2n * GiB);
        const denied = await user.call(VolumeService, "createVolume", { name: `by-${username}` }).then(() => undefined, (e: unknown) => e);
        expect(denied).toBeInstanceOf(ApiError);
        expect((denied as ApiError).code).toBe("permission_denied");
        expect((denied as ApiError).message).toMatch(/storage\.manage/);
        const deniedImage = await user.call(ImageService, "createImage", { volume: "vol1", name: `by-${username}`, sizeBytes: GiB }).then(() => undefined, (e: unknown) => e);
        expect((deniedImage as ApiError).code).toBe("permission_denied");
        const deniedResize = await user.call(ImageService, "resizeImage", { volume: "vol1", name: "keep", sizeBytes: 4n * GiB }).then(() => undefined, (e: unknown) => e);
        expect((deniedResize as ApiError).code).toBe("permission_denied");
      } finally {
        user.close();
      }
    }
    expect((await api.call(VolumeService, "listVolumes", {})).volumes.map((v) => v.name)).toEqual(["vol1"]);
    expect((await api.call(ImageService, "listImages", {})).images.map((i) => [i.name, i.sizeBytes])).toEqual([["keep", 2n * GiB]]);
  });

  it("deletes an emptied volume", async () => {
    await api.call(ImageService, "deleteImage", { volume: "vol1", name: "keep" });
    const r = cli(["volume", "delete", "vol1", ...conn]);
    expect(r.code, r.stderr).toBe(0);
    expect((await api.call(VolumeService, "listVolumes", {})).volumes).toEqual([]);
  });

  it("keeps writing on one copy of a replica 2 + arbiter volume while the other data node is down", async () => {
    const n1 = c.client(nodes[0]!, { linearizable: true });
    try {
      for (const name of ["arb", "pair"]) await n1.call(VolumeService, "createVolume", { name, replicaCount: 2, arbiter: name === "arb", brickPaths: [{ nodeName: "n1", path: "" }, { nodeName: "n2", path: "" }] });
      const data = Buffer.alloc(MiB, 0x5a);
      const write = (volume: string, at: number) => n1.call(ImageService, "writeImageContent", { volume, name: "img", offset: BigInt(at), data });
      for (const volume of ["arb", "pair"]) {
        await n1.call(ImageService, "createImage", { volume, name: "img", sizeBytes: BigInt(2 * MiB), kind: "template", upload: true });
        await DaemonCluster.retry(() => write(volume, 0), replicationWaitMs);
      }
      await c.kill(nodes[1]!);
      await write("arb", MiB);
      const finished = (await n1.call(ImageService, "finishImageUpload", { volume: "arb", name: "img" })).image!;
      expect(finished.state).toBe("ready");
      expect(finished.replicas.map((r) => [r.nodeName, r.inSync])).toEqual([["n1", true], ["n2", false]]);
      // Without the arbiter the last in-sync copy but one may not be dropped: the write fails.
      const refused = await write("pair", MiB).then(() => undefined, (e: unknown) => e);
      expect(refused).toBeInstanceOf(ApiError);
      expect((refused as ApiError).message).toMatch(/fewer than the write quorum of 2/);
      expect((await n1.call(ImageService, "getImage", { volume: "pair", name: "img" })).image!.replicas.every((r) => r.inSync)).toBe(true);
      const verified = cli(["volume", "verify", "arb", "--output", "json", ...conn]);
      expect(verified.code, verified.stderr).toBe(0);
      expect((JSON.parse(verified.stdout) as { images: Array<{ result: string; reason: string }> }).images).toEqual([
        expect.objectContaining({ result: "skipped", reason: "only node 1's replica is in sync: nothing to compare it with" }),
      ]);
    } finally {
      n1.close();
    }
  });
});
