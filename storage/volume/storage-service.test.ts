// The volume and image services on a real single-node Replica (Raft + SQLite state), called the
// way the dispatcher calls them (validate, then the handler): default and explicit bricks, the
// replica count bounded by the nodes, images created, grown, listed and deleted, bad input
// refused naming the field and changing nothing, VerifyImage and VerifyVolume with and without the
// injected replication dependency, and the replica 2 + arbiter layout refused without 2 replicas
// or 3 voters. Access rules per role are checked against rbac.ts.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { allowed } from "../../core/api/auth/rbac.ts";
import { ApiError } from "../../core/api/server/errors.ts";
import { noSessionCookie } from "../../core/api/server/dispatch.ts";
import type { HandlerContext, Principal, RegisteredService, RoleName } from "../../core/api/server/service.ts";
import { MemoryHub } from "../../core/raft/driver/memory-transport.ts";
import { Replica } from "../../core/state/replica.ts";
import type { VerifyImageResult } from "./image-service.ts";
import { storageServices } from "./storage-service.ts";

const leaderWaitMs = 10_000;
const GiB = 1024n ** 3n;

let dir: string;
let replica: Replica;
let verifyAnswer: VerifyImageResult | Error;
const verified: string[] = [];
let withVerify: RegisteredService[];
let withoutVerify: RegisteredService[];

function context(): HandlerContext {
  return {
    principal: null, replica, readMode: "local", logger: { debug() {}, info() {}, warn() {}, error() {} }, remoteAddress: "test", nowMs: Date.now(),
    transport: "grpc", sessionCookie: noSessionCookie, signal: new AbortController().signal, auditDetail: {},
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- responses are checked by shape
async function call(method: string, req: object, services = withVerify): Promise<any> {
  const m = services.flatMap((s) => [...s.methods.values()]).find((x) => x.desc.name === method);
  if (!m?.unary) throw new Error(`no method ${method}`);
  const msg = create(m.desc.input, req as never);
  m.validate(msg);
  return m.unary(msg, context());
}

async function refused(p: Promise<unknown>, code: string, field?: string): Promise<ApiError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err, `expected ${code} naming ${field ?? "no field"}`).toBeInstanceOf(ApiError);
  expect((err as ApiError).code).toBe(code);
  expect((err as ApiError).field).toBe(field);
  return err as ApiError;
}

async function join(name: string, port: number): Promise<void> {
  const r = await replica.execute({ type: "ext", name: "node.join", payload: { name, peerAddress: `127.0.0.1:${port}`, apiAddress: `127.0.0.1:${port + 1}`, httpAddress: `127.0.0.1:${port + 2}` } });
  expect(r.ok).toBe(true);
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "trivet-storage-service-"));
  replica = await Replica.open({ id: 1, dataDir: dir, transport: new MemoryHub().transport(1), initialMembers: new Map([[1, "n1"]]), host: { tickMs: 10 } });
  const deadline = Date.now() + leaderWaitMs;
  while (replica.host.leaderInfo().leader !== 1) {
    if (Date.now() > deadline) throw new Error(`no leader within ${leaderWaitMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
  await join("n1", 7100);
  await join("n2", 7200);
  withVerify = storageServices({
    verifyImage: async (id) => {
      verified.push(id);
      if (verifyAnswer instanceof Error) throw verifyAnswer;
      return verifyAnswer;
    },
  });
  withoutVerify = storageServices();
});

afterAll(async () => {
  await replica?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("VolumeService", () => {
  it("bounds the replica count by the nodes, defaults to all of them up to three, keeps explicit brick paths", async () => {
    await refused(call("CreateVolume", { name: "big", replicaCount: 3 }), "invalid_argument", "replica_count");
    const two = await call("CreateVolume", { name: "two" });
    expect(two.volume).toMatchObject({ name: "two", replicaCount: 2, imageCount: 0 });
    expect(two.volume.bricks.map((b: { nodeName: string; path: string }) => [b.nodeName, b.path])).toEqual([["n1", ""], ["n2", ""]]);
    await join("n3", 7300);
    await join("n4", 7400);
    const three = await call("CreateVolume", { name: "vol1", brickPaths: [{ nodeName: "n4", path: "/srv/bricks/vol1" }] });
    expect(three.volume.bricks.map((b: { nodeName: string; path: string }) => [b.nodeName, b.path])).toEqual([["n1", ""], ["n2", ""], ["n4", "/srv/bricks/vol1"]]);
    const one = await call("CreateVolume", { name: "solo", replicaCount: 1 });
    expect(one.volume.bricks.map((b: { nodeName: string }) => b.nodeName)).toEqual(["n1"]);
  });

  it("refuses bad volume requests naming the field, creating nothing", async () => {
    const before = (await call("ListVolumes", {})).volumes.length;
    await refused(call("CreateVolume", { name: "Bad_Name" }), "invalid_argument", "name");
    await refused(call("CreateVolume", { name: "x", replicaCount: 4 }), "invalid_argument", "replica_count");
    await refused(call("CreateVolume", { name: "x", brickPaths: [{ nodeName: "n1", path: "relative" }] }), "invalid_argument", "brick_paths[0].path");
    await refused(call("CreateVolume", { name: "x", brickPaths: [{ nodeName: "n1", path: "" }, { nodeName: "n1", path: "/a" }] }), "invalid_argument", "brick_paths[1].node_name");
    await refused(call("CreateVolume", { name: "x", brickPaths: [{ nodeName: "n9", path: "/a" }] }), "not_found", "brick_paths[0].node_name");
    await refused(call("CreateVolume", { name: "x", replicaCount: 1, brickPaths: [{ nodeName: "n1", path: "" }, { nodeName: "n2", path: "" }] }), "invalid_argument", "brick_paths");
    await refused(call("CreateVolume", { name: "vol1" }), "already_exists", "name");
    await refused(call("GetVolume", { name: "nope" }), "not_found", "name");
    expect((await call("ListVolumes", {})).volumes.length).toBe(before);
  });
});

describe("ImageService", () => {
  it("creates, grows, lists and deletes an image; a volume with images cannot be deleted", async () => {
    const created = await call("CreateImage", { volume: "vol1", name: "disk1", sizeBytes: 10n * GiB });
    expect(created.image).toMatchObject({ name: "disk1", volume: "vol1", kind: "disk", format: "raw", sizeBytes: 10n * GiB, state: "ready", generation: 1n, writerEpoch: 0n, writerNodeName: "", writerClean: true });
    expect(created.image.replicas.map((r: { nodeName: string; inSync: boolean }) => [r.nodeName, r.inSync])).toEqual([["n1", true], ["n2", true], ["n4", true]]);
    await call("CreateImage", { volume: "two", name: "debian-12.iso", sizeBytes: 512n, kind: "iso" });
    expect((await call("ResizeImage", { volume: "vol1", name: "disk1", sizeBytes: 20n * GiB })).image.sizeBytes).toBe(20n * GiB);
    expect((await call("ListImages", {})).images.map((i: { name: string }) => i.name).sort()).toEqual(["debian-12.iso", "disk1"]);
    expect((await call("ListImages", { volume: "two" })).images.map((i: { name: string }) => i.name)).toEqual(["debian-12.iso"]);
    expect((await call("GetVolume", { name: "two" })).volume.imageCount).toBe(1);
    await refused(call("DeleteVolume", { name: "two" }), "failed_precondition", "name");
    await call("DeleteImage", { volume: "two", name: "debian-12.iso" });
    await refused(call("GetImage", { volume: "two", name: "debian-12.iso" }), "not_found", "name");
    await call("DeleteVolume", { name: "two" });
    await refused(call("GetVolume", { name: "two" }), "not_found", "name");
  });

  it("refuses bad image requests naming the field, changing nothing", async () => {
    const img = { volume: "vol1", name: "disk1" };
    await refused(call("ResizeImage", { ...img, sizeBytes: 10n * GiB }), "invalid_argument", "size_bytes");
    await refused(call("ResizeImage", { ...img, sizeBytes: 30n * GiB + 1n }), "invalid_argument", "size_bytes");
    await refused(call("CreateImage", { volume: "vol1", name: "disk2", sizeBytes: 1000n }), "invalid_argument", "size_bytes");
    await refused(call("CreateImage", { volume: "vol1", name: "Disk 2", sizeBytes: GiB }), "invalid_argument", "name");
    await refused(call("CreateImage", { volume: "nope", name: "disk2", sizeBytes: GiB }), "not_found", "volume");
    await refused(call("CreateImage", { volume: "vol1", name: "disk1", sizeBytes: GiB }), "already_exists", "name");
    await refused(call("CreateImage", { volume: "vol1", name: "disk2", sizeBytes: GiB, format: "vmdk" }), "invalid_argument", "format");
    await refused(call("CreateImage", { volume: "vol1", name: "disk2", sizeBytes: GiB, kind: "iso", format: "qcow2" }), "invalid_argument", "format");
    await refused(call("CreateImage", { volume: "vol1", name: "disk2", sizeBytes: GiB, kind: "snapshot" }), "invalid_argument", "kind");
    await refused(call("ListImages", { volume: "nope" }), "not_found", "volume");
    const images = (await call("ListImages", { volume: "vol1" })).images;
    expect(images.map((i: { name: string; sizeBytes: bigint }) => [i.name, i.sizeBytes])).toEqual([["disk1", 20n * GiB]]);
  });

  it("refuses to delete an image a node holds open for writing", async () => {
    const id = (await call("GetImage", { volume: "vol1", name: "disk1" })).image.id as string;
    const acquired = await replica.execute({ type: "ext", name: "storage.image.acquireWriter", payload: { id, nodeId: 2 } });
    expect(acquired).toMatchObject({ ok: true, epoch: 1 });
    expect((await call("GetImage", { volume: "vol1", name: "disk1" })).image).toMatchObject({ writerNodeName: "n2", writerEpoch: 1n, writerClean: false });
    const err = await refused(call("DeleteImage", { volume: "vol1", name: "disk1" }), "failed_precondition", "name");
    expect(err.message).toMatch(/open for writing on node n2/);
    await replica.execute({ type: "ext", name: "storage.image.releaseWriter", payload: { id, epoch: 1 } });
  });

  it("verifies through the injected replication dependency, and is unavailable without it", async () => {
    const img = { volume: "vol1", name: "disk1" };
    const err = await call("VerifyImage", img, withoutVerify).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe("unavailable");
    expect((err as ApiError).message).toMatch(/replication service/);
    verifyAnswer = { chunkBytes: 1 << 20, replicas: [{ nodeId: 1, ok: true, error: "" }, { nodeId: 2, ok: true, error: "" }], mismatches: [] };
    const good = await call("VerifyImage", img);
    expect(good).toMatchObject({ chunkBytes: 1048576n, consistent: true, mismatches: [] });
    expect(good.replicas.map((r: { nodeName: string }) => r.nodeName)).toEqual(["n1", "n2"]);
    const id = (await call("GetImage", img)).image.id as string;
    expect(verified.at(-1)).toBe(id);
    verifyAnswer = { chunkBytes: 1 << 20, replicas: [{ nodeId: 1, ok: true, error: "" }, { nodeId: 4, ok: false, error: "EIO" }], mismatches: [{ offset: 3n << 20n, nodes: [2] }] };
    const bad = await call("VerifyImage", img);
    expect(bad).toMatchObject({ consistent: false, mismatches: [{ offset: 3n << 20n, nodeIds: [2n] }] });
    verifyAnswer = new Error("node n2 did not answer within 5000 ms");
    expect((await refused(call("VerifyImage", img), "unavailable")).message).toMatch(/verifying image "disk1": node n2 did not answer/);
  });

  it("lets everyone read, Operators verify, and only Administrators create, resize or delete", () => {
    const principal = (role: RoleName): Principal => ({ userId: "u", username: "u", role, grants: [], credential: { kind: "token", id: "t" } });
    const methods = withVerify.flatMap((s) => [...s.methods.values()]);
    const may = (role: RoleName, name: string) => allowed(principal(role), methods.find((m) => m.desc.name === name)!.policy.permission);
    for (const m of ["ListVolumes", "GetVolume", "ListImages", "GetImage"]) expect([may("auditor", m), may("operator", m)]).toEqual([true, true]);
    for (const m of ["CreateVolume", "DeleteVolume", "CreateImage", "ResizeImage", "DeleteImage"]) {
      expect([may("auditor", m), may("operator", m), may("administrator", m)], m).toEqual([false, false, true]);
    }
    expect([may("auditor", "VerifyImage"), may("operator", "VerifyImage")]).toEqual([false, true]);
    expect([may("auditor", "VerifyVolume"), may("operator", "VerifyVolume")]).toEqual([false, true]);
  });
});

describe("VolumeService: verify and arbiter", () => {
  it("verifies every image of a volume through the injected dependency, skipping uploads", async () => {
    await refused(call("VerifyVolume", { name: "vol1" }, withoutVerify), "unavailable");
    await refused(call("VerifyVolume", { name: "nope" }), "not_found", "name");
    await call("CreateImage", { volume: "vol1", name: "up.iso", sizeBytes: 512n, kind: "iso", upload: true });
    verified.length = 0;
    verifyAnswer = { chunkBytes: 1 << 20, replicas: [{ nodeId: 1, ok: true, error: "" }, { nodeId: 2, ok: true, error: "" }, { nodeId: 4, ok: true, error: "" }], mismatches: [{ offset: 1n << 20n, nodes: [4] }] };
    const r = await call("VerifyVolume", { name: "vol1" });
    expect(verified).toEqual([(await call("GetImage", { volume: "vol1", name: "disk1" })).image.id]);
    expect(r).toMatchObject({ volume: "vol1", chunkBytes: 1048576n, consistent: false });
    expect(r.images.map((i: { name: string; result: string }) => [i.name, i.result])).toEqual([["disk1", "differs"], ["up.iso", "skipped"]]);
    expect(r.images[0]).toMatchObject({ chunksCompared: 20n * 1024n, mismatches: [{ offset: 1n << 20n, nodeIds: [4n], nodeNames: ["n4"], noMajority: false }] });
    expect(r.images[0].replicas.map((x: { nodeName: string }) => x.nodeName)).toEqual(["n1", "n2", "n4"]);
    verifyAnswer = { ...verifyAnswer, mismatches: [] };
    expect(await call("VerifyVolume", { name: "vol1" })).toMatchObject({ consistent: true });
    await call("DeleteImage", { volume: "vol1", name: "up.iso" });
  });

  it("refuses an arbiter without two replicas or three Raft voters, naming the field", async () => {
    const before = (await call("ListVolumes", {})).volumes.length;
    await refused(call("CreateVolume", { name: "arb", replicaCount: 3, arbiter: true }), "invalid_argument", "arbiter");
    // Only n1 is a voter here (joined nodes start as learners).
    const few = await refused(call("CreateVolume", { name: "arb", arbiter: true }), "failed_precondition", "arbiter");
    expect(few.message).toMatch(/at least 3 Raft voters .*\(the cluster has 1\)/);
    expect((await call("ListVolumes", {})).volumes.length).toBe(before);
    // The single-voter Raft of this test cannot grow; the three-daemon test creates one.
    expect((await call("GetVolume", { name: "vol1" })).volume.arbiter).toBe(false);
  });
});
