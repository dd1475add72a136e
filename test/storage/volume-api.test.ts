// Volumes and images on a cluster of three real daemons, through the CLI and the API: a volume
// gets one brick on each node (default paths), every node reads the same records; an image is
// created, grown, listed, shown and deleted from the CLI; bad input (bad name, shrink, unknown
// volume, size not a multiple of 512) is refused naming the field and changes nothing; an
// Auditor and an Operator can read but cannot create.
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
const GiB = 1024n ** 3n;

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
});
