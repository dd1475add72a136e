// Replication end to end over real sockets: three replica servers on loopback behind mutual TLS
// (throwaway cluster CA), bricks in a temp dir, the coordinator's ReplicatedBackend on brick a
// with clients to b and c.
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClusterCa, createCsr, generateNodeKey, newSerial, signNodeCert } from "../../core/cluster/pki.ts";
import type { TlsIdentity } from "../../core/cluster/tls.ts";
import { FileBackend } from "../brick/file-backend.ts";
import { healReplica } from "./heal.ts";
import { ReplicaClient } from "./replica-client.ts";
import { ReplicaServer } from "./replica-server.ts";
import { LocalReplica } from "./replica-target.ts";
import { ReplicatedBackend } from "./replicated-backend.ts";
import type { ReplicationControl } from "./replicated-backend.ts";
import { connectReplicaTls, listenReplicationTls } from "./tls-channel.ts";
import { verifyReplicas } from "./verify.ts";

const K = 1024;
const M = 1024 * K;
const replicaTimeoutMs = 3_000;
const nodes = ["a", "b", "c"] as const;
type Node = (typeof nodes)[number];

let dir = "";
const ids = {} as Record<Node, TlsIdentity>;
const bricks = {} as Record<Node, string>;
const ports = {} as Record<Node, number>;
const running = new Map<Node, { server: ReplicaServer; listener: tls.Server }>();
let tmpfs: string | null = null;

const imagePath = (node: Node, imageId: string): string => path.join(bricks[node], "images", `${imageId}.raw`);

async function startNode(node: Node): Promise<void> {
  const server = new ReplicaServer({ resolveImage: (id) => ({ path: imagePath(node, id), format: "raw" }) });
  const listener = await listenReplicationTls(server, ids[node], ports[node] ?? 0);
  ports[node] = (listener.address() as { port: number }).port;
  running.set(node, { server, listener });
}

async function stopNode(node: Node): Promise<void> {
  const r = running.get(node);
  running.delete(node);
  if (r === undefined) return;
  await new Promise<void>((resolve) => {
    r.listener.close(() => resolve());
    void r.server.close();
  });
}

function client(node: Node, imageId: string, epoch: number, sizeBytes: number, from: Node = "a"): ReplicaClient {
  return new ReplicaClient({
    nodeId: node,
    imageId,
    epoch,
    sizeBytes,
    replicaTimeoutMs,
    connect: () => connectReplicaTls({ host: "127.0.0.1", port: ports[node], identity: ids[from] }),
  });
}

async function coordinator(imageId: string, epoch: number, sizeBytes: number, control: ReplicationControl) {
  const local = await FileBackend.open({ path: imagePath("a", imageId), sizeBytes });
  const remotes = [client("b", imageId, epoch, sizeBytes), client("c", imageId, epoch, sizeBytes)];
  await Promise.all(remotes.map((r) => r.open()));
  const backend = new ReplicatedBackend({
    imageId,
    epoch,
    sizeBytes,
    local: new LocalReplica({ nodeId: "a", backend: local }),
    remotes,
    inSync: nodes,
    control,
  });
  return { backend, remotes };
}

function recordingControl(): ReplicationControl & { calls: { nodeId: string; fullHeal: boolean; reason: string }[] } {
  const calls: { nodeId: string; fullHeal: boolean; reason: string }[] = [];
  return { calls, markOutOfSync: async (nodeId, info) => void calls.push({ nodeId, ...info }) };
}

/** Writes count random 4 KiB blocks at QD depth; returns the offsets written. */
async function randomWrites(b: ReplicatedBackend, count: number, depth: number, sizeBytes: number, onEach?: (i: number) => void): Promise<number[]> {
  const offsets: number[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      const at = Math.floor(Math.random() * (sizeBytes / (4 * K))) * 4 * K;
      offsets.push(at);
      onEach?.(i);
      await b.write(at, randomBytes(4 * K), { fua: false });
    }
  };
  await Promise.all(Array.from({ length: depth }, worker));
  return offsets;
}

/** SHA-256 of the first limitBytes of an image file on a brick, read in 1 MiB pieces. */
function fileOf(node: Node, imageId: string, limitBytes = Number.MAX_SAFE_INTEGER): string {
  const fd = fs.openSync(imagePath(node, imageId), "r");
  try {
    const h = createHash("sha256");
    const buf = Buffer.alloc(M);
    for (let at = 0; at < limitBytes; ) {
      const n = fs.readSync(fd, buf, 0, Math.min(M, limitBytes - at), at);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      at += n;
    }
    return h.digest("hex");
  } finally {
    fs.closeSync(fd);
  }
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "trivet-repl-"));
  const ca = await createClusterCa({ clusterName: "repltest", nowMs: Date.now() });
  for (const node of nodes) {
    const { keyPem } = await generateNodeKey();
    const csrPem = await createCsr({ nodeName: node, addresses: ["127.0.0.1"], keyPem });
    const certPem = await signNodeCert({ ca, csrPem, nodeName: node, addresses: ["127.0.0.1"], nowMs: Date.now(), serial: newSerial() });
    ids[node] = { caPem: ca.certPem, certPem, keyPem };
    bricks[node] = path.join(dir, node);
    fs.mkdirSync(path.join(bricks[node], "images"), { recursive: true });
    await startNode(node);
  }
}, 60_000);

afterAll(async () => {
  for (const node of nodes) await stopNode(node);
  if (tmpfs !== null) execFileSync("umount", ["-l", tmpfs]);
  fs.rmSync(dir, { recursive: true, force: true }); // can take seconds while the disk is busy
}, 120_000);

describe("replication over mutual TLS", () => {
  const size = 128 * M; // 2048 dirty-map extents: the writes below dirty about half
  const image = "img-main";
  let main: Awaited<ReturnType<typeof coordinator>>;
  const control = recordingControl();

  it("lands replicated writes on all three brick files", async () => {
    main = await coordinator(image, 1, size, control);
    await randomWrites(main.backend, 2000, 32, size);
    await main.backend.write(size - 1 * M, randomBytes(M), { fua: true });
    await main.backend.flush();
    expect(fs.statSync(imagePath("b", image)).size).toBe(size);
    const a = fileOf("a", image);
    expect(fileOf("b", image)).toBe(a);
    expect(fileOf("c", image)).toBe(a);
    expect(control.calls).toEqual([]);
  });

  it("keeps writing when a replica server dies, marks it out once and records its regions", async () => {
    let killed: Promise<void> | null = null;
    const offsets = await randomWrites(main.backend, 1500, 32, size, (i) => {
      if (i === 500) killed = stopNode("c");
    });
    await killed;
    expect(offsets).toHaveLength(1500);
    expect(control.calls.map((c) => c.nodeId)).toEqual(["c"]);
    const status = main.backend.status().find((s) => s.nodeId === "c");
    expect(status).toMatchObject({ state: "out", fullHeal: false });
    const dirty = main.backend.dirtyMap("c")!;
    for (const at of offsets.slice(-900)) expect(dirty.isDirty(at, 4 * K)).toBe(true);
    expect(dirty.dirtyBytes).toBeLessThan(size);
    await main.backend.flush();
    expect(fileOf("b", image)).toBe(fileOf("a", image));
    expect(fileOf("c", image)).not.toBe(fileOf("a", image));
  });

  it("heals the restarted replica by copying only its dirty regions; verify is then clean", async () => {
    await startNode("c");
    const { mode, dirty } = main.backend.startHealing("c");
    expect(mode).toBe("dirty");
    const dirtyBytes = dirty.dirtyBytes;
    const concurrent = randomWrites(main.backend, 300, 8, size);
    const res = await healReplica({
      access: main.backend,
      nodeId: "c",
      imageId: image,
      mode,
      dirty,
      sizeBytes: size,
      bytesPerSec: 0,
      pacing: { nowMs: () => performance.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) },
    });
    await concurrent;
    expect(res.copiedBytes).toBe(dirtyBytes);
    expect(res.copiedBytes).toBeLessThan(size);
    let commits = 0;
    await main.backend.completeHeal("c", async () => void commits++);
    expect(commits).toBe(1);
    await main.backend.flush();
    expect(fileOf("c", image)).toBe(fileOf("a", image));
    const verifiers = nodes.map((n) => client(n, image, 1, size, "b"));
    const report = await verifyReplicas({ imageId: image, sizeBytes: size, replicas: verifiers });
    await Promise.all(verifiers.map((v) => v.close()));
    expect(report).toEqual({ checkedBytes: size, mismatches: [], truncated: false });
  });

  it("refuses the old epoch once a newer writer opened the image", async () => {
    const newer = client("b", image, 2, size, "c");
    await newer.open();
    expect(fs.readFileSync(`${imagePath("b", image)}.epoch`, "utf8").trim()).toBe("2");
    await expect(main.backend.write(0, randomBytes(4 * K), { fua: false })).rejects.toMatchObject({ code: "io", message: expect.stringMatching(/fenced/) });
    const older = client("b", image, 1, size);
    await expect(older.open()).rejects.toMatchObject({ code: "stale_epoch" });
    await newer.write(0, randomBytes(4 * K), false);
    await Promise.all([newer.close(), older.close(), main.backend.close()]);
    expect(control.calls.map((c) => c.nodeId)).toEqual(["c"]); // a fenced writer marks nothing
  });

  it("fails the write with EIO, unacknowledged, when markOutOfSync is refused", async () => {
    const refused: string[] = [];
    const sideSize = 8 * M;
    const side = await coordinator("img-quorum", 1, sideSize, {
      markOutOfSync: async (nodeId) => {
        refused.push(nodeId);
        throw new Error("stale_epoch: the writer epoch moved on");
      },
    });
    await side.backend.write(0, Buffer.alloc(4 * K, 1), { fua: false });
    side.remotes[1]!.disconnect("test cuts the channel");
    await stopNode("c");
    let acked = false;
    const write = side.backend.write(4 * K, Buffer.alloc(4 * K, 2), { fua: false }).then(() => (acked = true));
    await expect(write).rejects.toMatchObject({ code: "io", message: expect.stringMatching(/marking node c out of sync failed/) });
    expect(acked).toBe(false);
    expect(refused).toEqual(["c"]);
    await side.backend.close();
    await startNode("c");
  });

  it("drops a replica whose brick is full and keeps writing on the others", async (ctx) => {
    const mnt = path.join(dir, "tmpfs-c");
    fs.mkdirSync(mnt, { recursive: true });
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt], { stdio: "pipe" });
      tmpfs = mnt;
    } catch (err) {
      ctx.skip(`cannot mount a 4 MiB tmpfs for the full-brick case (needs root): ${(err as Error).message.split("\n")[0]}`);
      return;
    }
    await stopNode("c");
    fs.mkdirSync(path.join(mnt, "images"));
    bricks.c = mnt;
    await startNode("c");
    const control = recordingControl();
    const fullSize = 16 * M;
    const full = await coordinator("img-full", 1, fullSize, control);
    for (let at = 0; at < 8 * M; at += M) await full.backend.write(at, randomBytes(M), { fua: false });
    await full.backend.flush();
    expect(control.calls).toHaveLength(1);
    expect(control.calls[0]).toMatchObject({ nodeId: "c", reason: expect.stringMatching(/No space left|ENOSPC/) });
    expect(fileOf("b", "img-full", 8 * M)).toBe(fileOf("a", "img-full", 8 * M));
    await full.backend.close();
  });
});
