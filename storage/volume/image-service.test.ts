// Deleting an abandoned upload through ImageService on a real single-node Replica: an image still
// "uploading" whose writer is held (by the upload) is released through the injected content
// (finish) and deleted once the writer is gone; a ready image with a writer is still refused
// without touching the content; an upload whose hold does not end within the bounded wait is
// refused, having waited exactly abandonedUploadReleaseWaitMs of (injected) time.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiError } from "../../core/api/server/errors.ts";
import { noSessionCookie } from "../../core/api/server/dispatch.ts";
import type { HandlerContext, RegisteredService } from "../../core/api/server/service.ts";
import { MemoryHub } from "../../core/raft/driver/memory-transport.ts";
import { Replica } from "../../core/state/replica.ts";
import type { VmRecord, VmStatusRecord } from "../../core/vm/vm-model.ts";
import { abandonedUploadReleaseWaitMs, imageService, pendingRestart, type ImageContent } from "./image-service.ts";
import { volumeService } from "./storage-service.ts";

const leaderWaitMs = 10_000;
const MiB = 1024n ** 2n;

let dir: string;
let replica: Replica;
let finished: string[] = [];
/** What the fake storage node does when an upload is finished: release the writer, or keep holding. */
let releaseOnFinish = true;
let sleptMs = 0;
let services: RegisteredService[];

const content: ImageContent = {
  write: async () => undefined,
  async finish(imageId) {
    finished.push(imageId);
    if (!releaseOnFinish) return;
    const epoch = replica.stateMachine.read((db) => db.prepare("SELECT writer_epoch FROM storage_images WHERE id = ?").pluck().get(imageId) as number).value;
    // The coordinator closes the idle image a moment later: the release commits after finish returns.
    setTimeout(() => void replica.execute({ type: "ext", name: "storage.image.releaseWriter", payload: { id: imageId, epoch } }), 50);
  },
};

function context(): HandlerContext {
  return {
    principal: null, replica, readMode: "local", logger: { debug() {}, info() {}, warn() {}, error() {} }, remoteAddress: "test", nowMs: Date.now(),
    transport: "grpc", sessionCookie: noSessionCookie, signal: new AbortController().signal, auditDetail: {},
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- responses are checked by shape
async function call(method: string, req: object): Promise<any> {
  const m = services.flatMap((s) => [...s.methods.values()]).find((x) => x.desc.name === method);
  if (!m?.unary) throw new Error(`no method ${method}`);
  const msg = create(m.desc.input, req as never);
  m.validate(msg);
  return m.unary(msg, context());
}

async function heldImage(name: string, upload: boolean): Promise<string> {
  const r = await call("CreateImage", { volume: "vol1", name, sizeBytes: MiB, kind: "iso", upload });
  const taken = await replica.execute({ type: "ext", name: "storage.image.acquireWriter", payload: { id: r.image.id, nodeId: 1 } });
  expect(taken.ok).toBe(true);
  return r.image.id as string;
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "trivet-image-service-"));
  replica = await Replica.open({ id: 1, dataDir: dir, transport: new MemoryHub().transport(1), initialMembers: new Map([[1, "n1"]]), host: { tickMs: 10 } });
  const deadline = Date.now() + leaderWaitMs;
  while (replica.host.leaderInfo().leader !== 1) {
    if (Date.now() > deadline) throw new Error(`no leader within ${leaderWaitMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
  const joined = await replica.execute({ type: "ext", name: "node.join", payload: { name: "n1", peerAddress: "127.0.0.1:7100", apiAddress: "127.0.0.1:7101", httpAddress: "127.0.0.1:7102" } });
  expect(joined.ok).toBe(true);
  // Real time for the release to commit; counted, to check the bound of the wait.
  services = [volumeService(), imageService({ content, sleep: (ms) => { sleptMs += ms; return new Promise((r) => setTimeout(r, Math.min(ms, 10))); } })];
  await call("CreateVolume", { name: "vol1" });
});

afterAll(async () => {
  await replica?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("deleting an abandoned upload", () => {
  it("ends the upload's hold, waits for the writer to go, and deletes the image", async () => {
    finished = [];
    releaseOnFinish = true;
    const id = await heldImage("half.iso", true);
    await call("DeleteImage", { volume: "vol1", name: "half.iso" });
    expect(finished).toEqual([id]);
    expect((await call("ListImages", { volume: "vol1" })).images).toEqual([]);
  });

  it("still refuses a ready image that a node holds open, without touching its content", async () => {
    finished = [];
    await heldImage("busy.iso", false);
    const err = await call("DeleteImage", { volume: "vol1", name: "busy.iso" }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe("failed_precondition");
    expect((err as ApiError).message).toMatch(/open for writing on node n1/);
    expect(finished).toEqual([]);
  });

  it("refuses after the bounded wait when the hold does not end", async () => {
    finished = [];
    releaseOnFinish = false;
    sleptMs = 0;
    const id = await heldImage("stuck.iso", true);
    const err = await call("DeleteImage", { volume: "vol1", name: "stuck.iso" }).then(() => undefined, (e: unknown) => e);
    expect((err as ApiError).code).toBe("failed_precondition");
    expect(finished).toEqual([id]);
    expect(sleptMs).toBe(abandonedUploadReleaseWaitMs);
    expect((await call("GetImage", { volume: "vol1", name: "stuck.iso" })).image.state).toBe("uploading");
  });
});

describe("which running VMs a resize leaves pending a restart", () => {
  const vm = (id: string, name: string, disk: string | null, cdrom: string | null): VmRecord => ({
    id, name, nodeId: 1, spec: { disks: disk === null ? [] : [{ id: "disk0", volume: "vol1", image: disk }], cdrom: cdrom === null ? null : { path: `vol1/${cdrom}` } },
  }) as unknown as VmRecord;
  const status = (vmId: string, state: string, error: string | null = null): [string, VmStatusRecord] =>
    [vmId, { vmId, nodeId: 1, state, error } as VmStatusRecord];
  const vms = [vm("a", "web1", "root", null), vm("b", "web2", "data", "tools.iso"), vm("c", "web3", "other", null)];

  it("none for a running VM whose disk grows online, nor for a stopped one", () => {
    expect(pendingRestart(vms, new Map([status("a", "running")]), "vol1/root")).toEqual([]);
    expect(pendingRestart(vms, new Map([status("a", "stopped", "earlier failure")]), "vol1/root")).toEqual([]);
  });

  it("a running or paused VM whose host reports an error (QEMU refused a grow), and a CD-ROM user", () => {
    expect(pendingRestart(vms, new Map([status("b", "paused", "VM web2, image vol1/data: growing disk disk0 …")]), "vol1/data")).toEqual(["web2"]);
    expect(pendingRestart(vms, new Map([status("b", "running")]), "vol1/tools.iso")).toEqual(["web2"]);
  });
});
