// ReplicaServer and ReplicaClient against each other over loopback TCP (no TLS: that is
// replication.test.ts), with bricks in a temp dir.
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { StorageError } from "../nbd/backend.ts";
import { FileBackend } from "../brick/file-backend.ts";
import type { BrickImage, OpenBrickImage } from "./image-table.ts";
import { encodeRequestHeader, op } from "./protocol.ts";
import { ReplicaClient } from "./replica-client.ts";
import { ReplicaServer } from "./replica-server.ts";
import { LocalReplica } from "./replica-target.ts";
import { ReplicatedBackend } from "./replicated-backend.ts";
import { MemoryBackend } from "../brick/memory-backend.ts";
import { AlignedPool } from "../memory/aligned-pool.ts";
import { BufferPool } from "../memory/buffer-pool.ts";
import { payloadAllocator, type LeasePayload } from "../memory/payload.ts";

const M = 1024 * 1024;
let dir = "";
const cleanups: (() => Promise<void>)[] = [];

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "trivet-repl-ch-"));
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function listen(server: ReplicaServer): Promise<number> {
  const tcp = net.createServer((s) => server.serve(s));
  await new Promise<void>((r) => tcp.listen(0, "127.0.0.1", r));
  cleanups.push(async () => {
    await server.close();
    await new Promise<void>((r) => tcp.close(() => r()));
  });
  return (tcp.address() as net.AddressInfo).port;
}

function brickServer(openImage?: OpenBrickImage, inflightMax?: number, leasePayload?: LeasePayload): ReplicaServer {
  return new ReplicaServer({
    resolveImage: (id) => ({ path: path.join(dir, `${id}.raw`), format: "raw" }),
    ...(openImage ? { openImage } : {}),
    ...(inflightMax ? { inflightMax } : {}),
    ...(leasePayload ? { leasePayload } : {}),
  });
}

/** A payload allocator over pools of its own that counts leases and releases. */
function countingLeases(): { lease: LeasePayload; leased: number; released: number; aligned: number } {
  const aligned = new AlignedPool(M, 4);
  const inner = payloadAllocator(new BufferPool(), aligned);
  const c = {
    leased: 0,
    released: 0,
    aligned: 0,
    lease: (bytes: number, offset: number) => {
      const l = inner(bytes, offset);
      c.leased++;
      if (aligned.holds(l.buffer)) c.aligned++;
      return { buffer: l.buffer, release: () => (c.released++, l.release()) };
    },
  };
  return c;
}

function client(port: number, imageId: string, epoch: number, sizeBytes = 8 * M, replicaTimeoutMs = 2000): ReplicaClient {
  const c = new ReplicaClient({ nodeId: "n1", imageId, epoch, sizeBytes, replicaTimeoutMs, connect: async () => net.connect(port, "127.0.0.1") });
  cleanups.push(() => c.close());
  return c;
}

describe("replica server and client", () => {
  it("replicates large and unaligned writes through a replicated backend and gives every payload's memory back", async () => {
    const leases = countingLeases();
    const port = await listen(brickServer(undefined, undefined, leases.lease));
    const remote = client(port, "parts", 1);
    const memory = new MemoryBackend(8 * M);
    const local = new LocalReplica({ nodeId: "n0", backend: Object.assign(memory, { close: async () => undefined }) });
    const backend = new ReplicatedBackend({
      imageId: "parts", epoch: 1, sizeBytes: 8 * M, local, remotes: [remote], inSync: ["n0", "n1"],
      control: { markOutOfSync: () => Promise.reject(new Error("no replica may fail here")) },
    });
    const data = randomBytes(3 * M);
    await backend.write(M, data, { fua: true }); // larger than a slot: pooled memory, copied through slots
    await backend.write(4 * M, data.subarray(M, 2 * M), { fua: false }); // one slot: received into aligned memory
    expect((await remote.read(M, data.length)).equals(data)).toBe(true);
    expect((await memory.read(M, data.length)).equals(data)).toBe(true);
    expect((await remote.read(4 * M, M)).equals(data.subarray(M, 2 * M))).toBe(true);
    await remote.write(5 * M + 512, data.subarray(0, 68 * 1024), false); // unaligned: the brick writes it buffered
    expect((await remote.read(5 * M + 512, 68 * 1024)).equals(data.subarray(0, 68 * 1024))).toBe(true);
    // OPEN's image id, the three writes; only the one-slot write fits the aligned pool.
    expect(leases.leased).toBe(4);
    expect(leases.aligned).toBe(1);
    expect(leases.released).toBe(leases.leased);
  });

  it("serves many pipelined requests, never more than inflightMax at once on the brick", async () => {
    let running = 0;
    let peak = 0;
    const counting: OpenBrickImage = async (p, size) => {
      const b = await FileBackend.open({ path: p, sizeBytes: size });
      const write = b.write.bind(b);
      b.write = async (...args) => {
        peak = Math.max(peak, ++running);
        try {
          return await write(...args);
        } finally {
          running--;
        }
      };
      return b as BrickImage;
    };
    const port = await listen(brickServer(counting, 4));
    const c = client(port, "pipe", 1);
    const blocks = Array.from({ length: 200 }, () => randomBytes(4096));
    await Promise.all(blocks.map((b, i) => c.write(i * 8192, b, false)));
    const back = await Promise.all(blocks.map((_, i) => c.read(i * 8192, 4096)));
    back.forEach((got, i) => expect(got.equals(blocks[i]!)).toBe(true));
    expect(peak).toBeGreaterThan(1);
    expect(peak).toBeLessThanOrEqual(4);
    await c.flush();
  });

  it("answers checksums like a local digest and grows the file", async () => {
    const port = await listen(brickServer());
    const c = client(port, "sums", 1, 3 * M);
    const data = randomBytes(3 * M);
    await c.write(0, data, false);
    const sums = await c.checksums(0, 3 * M, M);
    for (let i = 0; i < 3; i++) {
      const want = createHash("sha256").update(data.subarray(i * M, (i + 1) * M)).digest();
      expect(sums.subarray(i * 32, (i + 1) * 32).equals(want)).toBe(true);
    }
    await c.grow(5 * M);
    expect(fs.statSync(path.join(dir, "sums.raw")).size).toBe(5 * M);
    await c.write(4 * M, data.subarray(0, 4096), false);
    await expect(c.checksums(0, 3 * M, 3000)).rejects.toMatchObject({ code: "invalid_argument" });
  });

  it("refuses requests of an older epoch once a newer one opened, also after a brick restart", async () => {
    const port = await listen(brickServer());
    const old = client(port, "fence", 4);
    await old.write(0, Buffer.alloc(512, 1), false);
    await client(port, "fence", 5).open();
    await expect(old.write(0, Buffer.alloc(512, 2), false)).rejects.toMatchObject({ code: "stale_epoch", message: expect.stringMatching(/superseded by 5/) });
    expect(fs.readFileSync(path.join(dir, "fence.raw.epoch"), "utf8")).toBe("5\n");
    const restarted = await listen(brickServer());
    await expect(client(restarted, "fence", 4).open()).rejects.toMatchObject({ code: "stale_epoch" });
    await client(restarted, "fence", 5).write(512, Buffer.alloc(512, 3), false);
  });

  it("reports a full brick as no_space", async () => {
    const full: OpenBrickImage = async (p, size) => {
      const b = await FileBackend.open({ path: p, sizeBytes: size });
      b.write = () => Promise.reject(new StorageError("no_space", "writing: ENOSPC: no space left on device"));
      return b as BrickImage;
    };
    const port = await listen(brickServer(full));
    await expect(client(port, "full", 1).write(0, Buffer.alloc(4096), false)).rejects.toMatchObject({ code: "no_space" });
  });

  it("times out a brick that does not answer, then reconnects", async () => {
    const sockets: net.Socket[] = [];
    const mute = net.createServer((s) => sockets.push(s.on("data", () => undefined)));
    await new Promise<void>((r) => mute.listen(0, "127.0.0.1", r));
    const mutePort = (mute.address() as net.AddressInfo).port;
    const realPort = await listen(brickServer());
    let target = mutePort;
    const c = new ReplicaClient({ nodeId: "slow", imageId: "to", epoch: 1, sizeBytes: M, replicaTimeoutMs: 200, connect: async () => net.connect(target, "127.0.0.1") });
    const t0 = performance.now();
    await expect(c.write(0, Buffer.alloc(512), false)).rejects.toMatchObject({ code: "timeout" });
    expect(performance.now() - t0).toBeLessThan(2000);
    target = realPort;
    await c.write(0, Buffer.alloc(512, 7), false);
    expect((await c.read(0, 512))[0]).toBe(7);
    await c.close();
    await expect(c.read(0, 1)).rejects.toMatchObject({ code: "closed" });
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => mute.close(() => r()));
  });

  it("fails requests in flight with closed when the brick goes away", async () => {
    const slow: OpenBrickImage = async (p, size) => {
      const b = await FileBackend.open({ path: p, sizeBytes: size });
      b.write = () => new Promise(() => undefined);
      return b as BrickImage;
    };
    const server = brickServer(slow);
    const port = await listen(server);
    const c = client(port, "gone", 1);
    await c.open();
    const failed = expect(c.write(0, Buffer.alloc(512), false)).rejects.toMatchObject({ code: "closed" });
    await new Promise((r) => setTimeout(r, 20));
    await server.close();
    await failed;
  });

  it("drops a channel that sends garbage or requests before OPEN", async () => {
    const port = await listen(brickServer());
    const s = net.connect(port, "127.0.0.1");
    const closed = new Promise<void>((r) => s.on("close", () => r()));
    s.on("error", () => undefined);
    s.write(Buffer.alloc(48, 0xee));
    await closed;
    const s2 = net.connect(port, "127.0.0.1");
    const got: Buffer[] = [];
    s2.on("data", (d: Buffer) => got.push(d));
    s2.write(encodeRequestHeader({ op: op.read, flags: 0, handle: 9, epoch: 1, offset: 0, length: 512, chunkBytes: 0 }, 0));
    await new Promise((r) => setTimeout(r, 100));
    expect(Buffer.concat(got).readUInt8(4)).toBe(6); // status not_open
    s2.destroy();
  });

  it("closes its side once the peer sent CLOSE and ended, releasing the channel", async () => {
    // A brick that stopped reading after CLOSE would never see the peer's EOF: half open for good.
    const server = brickServer();
    let accepted: net.Socket | null = null;
    const tcp = net.createServer((sock) => {
      accepted = sock;
      server.serve(sock);
    });
    await new Promise<void>((r) => tcp.listen(0, "127.0.0.1", r));
    cleanups.push(async () => {
      await server.close();
      await new Promise<void>((r) => tcp.close(() => r()));
    });
    const s = net.connect((tcp.address() as net.AddressInfo).port, "127.0.0.1");
    s.on("error", () => undefined);
    const got: Buffer[] = [];
    s.on("data", (d: Buffer) => got.push(d));
    await new Promise<void>((r) => s.once("connect", () => r()));
    const id = Buffer.from("close-me", "utf8");
    s.write(Buffer.concat([encodeRequestHeader({ op: op.open, flags: 0, handle: 1, epoch: 1, offset: M, length: 0, chunkBytes: 0 }, id.length), id]));
    s.write(encodeRequestHeader({ op: op.close, flags: 0, handle: 2, epoch: 1, offset: 0, length: 0, chunkBytes: 0 }, 0));
    s.end();
    const deadline = Date.now() + 5_000;
    while ((accepted === null || !(accepted as net.Socket).destroyed) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(accepted).not.toBeNull();
    expect((accepted as unknown as net.Socket).destroyed, "the brick's side of the channel closed").toBe(true);
    expect(Buffer.concat(got).length).toBeGreaterThan(0); // OPEN and CLOSE were answered
  });
});
