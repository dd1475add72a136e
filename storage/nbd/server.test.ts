// The NBD server against a hand-written client on a unix socket: negotiation, pipelining and
// reply order, bounds, validation, protocol errors and shutdown. Real clients (qemu, fio) are
// exercised in test/storage/nbd.test.ts.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MemoryBackend } from "../brick/memory-backend.ts";
import { AlignedPool } from "../memory/aligned-pool.ts";
import { BufferPool } from "../memory/buffer-pool.ts";
import { payloadAllocator, type LeasePayload } from "../memory/payload.ts";
import { ByteQueue } from "./byte-queue.ts";
import { cmd, cmdFlag, encodeInfoRequest, encodeOption, encodeRequest, info, opt, rep, replyType } from "./protocol.ts";
import { NbdServer } from "./server.ts";

const readTimeoutMs = 5_000;
const settleMs = 50;

class RawClient {
  private readonly queue = new ByteQueue();
  private waiter: (() => void) | null = null;
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on("data", (c: Buffer) => {
      this.queue.push(c);
      this.waiter?.();
    });
    socket.on("close", () => {
      this.closed = true;
      this.waiter?.();
    });
    socket.on("error", () => undefined);
  }

  static open(to: string | number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = typeof to === "string" ? connect(to, () => resolve(new RawClient(s))) : connect(to, "127.0.0.1", () => resolve(new RawClient(s)));
      s.once("error", reject);
    });
  }

  async read(n: number): Promise<Buffer> {
    const deadline = Date.now() + readTimeoutMs;
    while (this.queue.length < n) {
      if (this.closed) throw new Error(`closed while waiting for ${n} bytes`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} bytes`);
      await new Promise<void>((r) => {
        this.waiter = r;
        setTimeout(r, settleMs);
      });
      this.waiter = null;
    }
    return this.queue.take(n);
  }

  /** Resolves once the server has closed the connection (bounded by readTimeoutMs). */
  async waitClosed(): Promise<boolean> {
    const deadline = Date.now() + readTimeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return this.closed;
  }

  async optionReply(): Promise<{ option: number; type: number; data: Buffer }> {
    const h = await this.read(20);
    const length = h.readUInt32BE(16);
    return { option: h.readUInt32BE(8), type: h.readUInt32BE(12), data: length > 0 ? await this.read(length) : Buffer.alloc(0) };
  }

  /** Greeting, flags, optional structured replies, then NBD_OPT_GO. */
  async handshake(name: string, structured: boolean): Promise<{ sizeBytes: bigint; flags: number; blockMax: number }> {
    await this.read(18);
    this.socket.write(Buffer.from([0, 0, 0, 3]));
    if (structured) {
      this.socket.write(encodeOption(opt.structuredReply));
      expect((await this.optionReply()).type).toBe(rep.ack);
    }
    this.socket.write(encodeOption(opt.go, encodeInfoRequest({ name, infos: [info.blockSize] })));
    const out = { sizeBytes: 0n, flags: 0, blockMax: 0 };
    for (;;) {
      const r = await this.optionReply();
      if (r.type === rep.ack) return out;
      if (r.type !== rep.info) throw new Error(`NBD_OPT_GO failed with reply 0x${r.type.toString(16)}: ${r.data.toString()}`);
      if (r.data.readUInt16BE(0) === info.export) Object.assign(out, { sizeBytes: r.data.readBigUInt64BE(2), flags: r.data.readUInt16BE(10) });
      if (r.data.readUInt16BE(0) === info.blockSize) out.blockMax = r.data.readUInt32BE(10);
    }
  }

  send(type: number, handle: bigint, offset: bigint, length: number, opts: { flags?: number; data?: Buffer } = {}): void {
    this.socket.write(encodeRequest({ flags: opts.flags ?? 0, type, handle, offset, length }));
    if (opts.data !== undefined) this.socket.write(opts.data);
  }

  async simpleReply(): Promise<{ error: number; handle: bigint }> {
    const h = await this.read(16);
    expect(h.readUInt32BE(0)).toBe(0x67446698);
    return { error: h.readUInt32BE(4), handle: h.readBigUInt64BE(8) };
  }

  async chunk(): Promise<{ flags: number; type: number; handle: bigint; payload: Buffer }> {
    const h = await this.read(20);
    expect(h.readUInt32BE(0)).toBe(0x668e33ef);
    const length = h.readUInt32BE(16);
    return { flags: h.readUInt16BE(4), type: h.readUInt16BE(6), handle: h.readBigUInt64BE(8), payload: length > 0 ? await this.read(length) : Buffer.alloc(0) };
  }
}

/** A memory backend whose operations can be held until released, counting those under way. */
class GatedBackend extends MemoryBackend {
  started = 0;
  running = 0;
  held = true;
  private releases: (() => void)[] = [];

  release(): void {
    this.held = false;
    for (const r of this.releases.splice(0)) r();
  }

  private async gate(): Promise<void> {
    this.started++;
    this.running++;
    if (this.held) await new Promise<void>((r) => this.releases.push(r));
    this.running--;
  }

  override async write(offset: number, data: Buffer, o: { fua: boolean }): Promise<void> {
    await this.gate();
    return super.write(offset, data, o);
  }
}

let dir = "";
let server: NbdServer;
let backend: MemoryBackend;
const clients: RawClient[] = [];
const sizeBytes = 1024 * 1024;

async function startServer(b: MemoryBackend, limits: ConstructorParameters<typeof NbdServer>[0]["limits"] = {}, tcpPort?: number): Promise<string> {
  const socketPath = join(dir, "nbd.sock");
  server = new NbdServer({ socketPath, limits, ...(tcpPort === undefined ? {} : { tcpPort }) });
  server.addExport("disk", b);
  await server.listen();
  return socketPath;
}

async function client(path: string | number): Promise<RawClient> {
  const c = await RawClient.open(path);
  clients.push(c);
  return c;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "trivet-nbd-"));
  backend = new MemoryBackend(sizeBytes);
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.socket.destroy();
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

describe("negotiation", () => {
  it("lists exports, reports unknown names and unsupported options, then enters transmission", async () => {
    const c = await client(await startServer(backend));
    const greeting = await c.read(18);
    expect(greeting.toString("ascii", 0, 16)).toBe("NBDMAGICIHAVEOPT");
    expect(greeting.readUInt16BE(16)).toBe(3);
    c.socket.write(Buffer.from([0, 0, 0, 3]));
    c.socket.write(encodeOption(opt.list));
    const entry = await c.optionReply();
    expect(entry.type).toBe(rep.server);
    expect(entry.data.toString("utf8", 4)).toBe("disk");
    expect((await c.optionReply()).type).toBe(rep.ack);
    c.socket.write(encodeOption(opt.info, encodeInfoRequest({ name: "nope", infos: [] })));
    expect((await c.optionReply()).type).toBe(rep.errUnknown);
    c.socket.write(encodeOption(opt.setMetaContext, Buffer.alloc(8)));
    expect((await c.optionReply()).type).toBe(rep.errUnsup);
    c.socket.write(encodeOption(opt.go, encodeInfoRequest({ name: "disk", infos: [] })));
    const exportInfo = await c.optionReply();
    expect(exportInfo.data.readBigUInt64BE(2)).toBe(BigInt(sizeBytes));
    const blockSize = await c.optionReply();
    expect(blockSize.data).toEqual(Buffer.from("0003000000010000100002000000", "hex"));
    expect((await c.optionReply()).type).toBe(rep.ack);
    c.send(cmd.flush, 9n, 0n, 0);
    expect(await c.simpleReply()).toEqual({ error: 0, handle: 9n });
  });

  it("also serves on a loopback TCP port when asked", async () => {
    await startServer(backend, {}, 0);
    const port = server.tcpPort;
    expect(port).toBeGreaterThan(0);
    const c = await client(port ?? 0);
    expect((await c.handshake("disk", true)).sizeBytes).toBe(BigInt(sizeBytes));
    c.send(cmd.flush, 1n, 0n, 0);
    expect(await c.simpleReply()).toEqual({ error: 0, handle: 1n });
  });

  it("serves old clients that use NBD_OPT_EXPORT_NAME, with the 124 zero bytes", async () => {
    const c = await client(await startServer(backend));
    await c.read(18);
    c.socket.write(Buffer.from([0, 0, 0, 1]));
    c.socket.write(encodeOption(opt.exportName, Buffer.from("disk")));
    const reply = await c.read(134);
    expect(reply.readBigUInt64BE(0)).toBe(BigInt(sizeBytes));
    expect(reply.subarray(10).equals(Buffer.alloc(124))).toBe(true);
    c.send(cmd.write, 1n, 0n, 4, { data: Buffer.from("abcd") });
    expect((await c.simpleReply()).error).toBe(0);
  });

  it("disconnects a client that sends a bad option magic or unknown client flags", async () => {
    const path = await startServer(backend);
    const a = await client(path);
    await a.read(18);
    a.socket.write(Buffer.from([0, 0, 0, 3]));
    a.socket.write(Buffer.alloc(16, 0x55));
    expect(await a.waitClosed()).toBe(true);
    const b = await client(path);
    await b.read(18);
    b.socket.write(Buffer.from([0, 0, 0x80, 0]));
    expect(await b.waitClosed()).toBe(true);
  });
});

describe("transmission", () => {
  it("puts a write that arrives in pieces into one leased buffer, handed back once the backend settled it", async () => {
    const calls: { length: number; aligned: boolean; releasedBefore: number }[] = [];
    const aligned = new AlignedPool(1024 * 1024, 2);
    const inner = payloadAllocator(new BufferPool(), aligned);
    let leased = 0;
    let released = 0;
    const leasePayload: LeasePayload = (bytes, offset) => {
      const l = inner(bytes, offset);
      leased++;
      return { buffer: l.buffer, release: () => (released++, l.release()) };
    };
    class RecordingBackend extends MemoryBackend {
      override async write(offset: number, data: Buffer, o: { fua: boolean }): Promise<void> {
        calls.push({ length: data.length, aligned: aligned.holds(data), releasedBefore: released });
        return super.write(offset, data, o);
      }
    }
    const b = new RecordingBackend(sizeBytes);
    const socketPath = join(dir, "nbd.sock");
    server = new NbdServer({ socketPath, leasePayload });
    server.addExport("disk", b);
    await server.listen();
    const c = await client(socketPath);
    await c.handshake("disk", false);
    const big = randomBytes(256 * 1024);
    c.send(cmd.write, 1n, 4096n, big.length, { data: big.subarray(0, 1000) });
    await new Promise((r) => setTimeout(r, settleMs)); // the rest arrives in a later chunk
    c.socket.write(big.subarray(1000));
    expect(await c.simpleReply()).toEqual({ error: 0, handle: 1n });
    const small = randomBytes(4096);
    c.send(cmd.write, 2n, 0n, small.length, { data: small });
    expect(await c.simpleReply()).toEqual({ error: 0, handle: 2n });
    // The large aligned write went into the aligned pool (a brick writes it O_DIRECT from there).
    expect(calls).toEqual([
      { length: big.length, aligned: true, releasedBefore: 0 },
      { length: small.length, aligned: false, releasedBefore: 1 },
    ]);
    expect([leased, released]).toEqual([2, 2]);
    expect((await b.read(4096, big.length)).equals(big)).toBe(true);
    expect((await b.read(0, small.length)).equals(small)).toBe(true);
  });

  it("writes and reads back with simple and with structured replies", async () => {
    const path = await startServer(backend);
    const data = randomBytes(5000);
    const a = await client(path);
    await a.handshake("disk", false);
    a.send(cmd.write, 1n, 100n, data.length, { data, flags: cmdFlag.fua });
    expect(await a.simpleReply()).toEqual({ error: 0, handle: 1n });
    a.send(cmd.read, 2n, 100n, data.length);
    expect(await a.simpleReply()).toEqual({ error: 0, handle: 2n });
    expect((await a.read(data.length)).equals(data)).toBe(true);

    const b = await client(path);
    const negotiated = await b.handshake("disk", true);
    expect(negotiated).toMatchObject({ sizeBytes: BigInt(sizeBytes), blockMax: 32 * 1024 * 1024 });
    expect(negotiated.flags & 0x80).toBe(0x80);
    b.send(cmd.read, 3n, 100n, data.length);
    const ch = await b.chunk();
    expect(ch).toMatchObject({ flags: 1, type: replyType.offsetData, handle: 3n });
    expect(ch.payload.readBigUInt64BE(0)).toBe(100n);
    expect(ch.payload.subarray(8).equals(data)).toBe(true);
    expect(backend.stats.fuaWrites).toBe(1);
  });

  it("answers out of order: a held write does not delay a later read", async () => {
    const gated = new GatedBackend(sizeBytes);
    const c = await client(await startServer(gated));
    await c.handshake("disk", false);
    c.send(cmd.write, 1n, 0n, 4, { data: Buffer.from("wxyz") });
    c.send(cmd.read, 2n, 4096n, 4);
    expect(await c.simpleReply()).toEqual({ error: 0, handle: 2n });
    await c.read(4);
    gated.release();
    expect(await c.simpleReply()).toEqual({ error: 0, handle: 1n });
  });

  it("serves at most inflightMax requests of a connection at once", async () => {
    const gated = new GatedBackend(sizeBytes);
    const c = await client(await startServer(gated, { inflightMax: 4 }));
    await c.handshake("disk", false);
    for (let i = 0; i < 10; i++) c.send(cmd.write, BigInt(i), BigInt(i * 512), 512, { data: Buffer.alloc(512, i) });
    const deadline = Date.now() + readTimeoutMs;
    while (gated.started < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, settleMs));
    expect(gated.started).toBe(4);
    gated.release();
    const handles = new Set<bigint>();
    for (let i = 0; i < 10; i++) handles.add((await c.simpleReply()).handle);
    expect(handles.size).toBe(10);
    expect((await gated.read(9 * 512, 512)).equals(Buffer.alloc(512, 9))).toBe(true);
  });

  it("answers bad ranges and flags with errors and keeps serving", async () => {
    const c = await client(await startServer(backend));
    await c.handshake("disk", true);
    c.send(cmd.read, 1n, BigInt(sizeBytes - 10), 20);
    const readErr = await c.chunk();
    expect(readErr).toMatchObject({ type: replyType.error, handle: 1n });
    expect(readErr.payload.readUInt32BE(0)).toBe(22);
    c.send(cmd.write, 2n, BigInt(sizeBytes), 8, { data: Buffer.alloc(8) });
    expect((await c.chunk()).payload.readUInt32BE(0)).toBe(28);
    c.send(cmd.writeZeroes, 3n, 0n, 8, { flags: cmdFlag.df });
    expect((await c.chunk()).payload.readUInt32BE(0)).toBe(22);
    c.send(cmd.trim, 4n, 2n ** 63n, 1);
    expect((await c.chunk()).payload.readUInt32BE(0)).toBe(22);
    c.send(cmd.write, 5n, 0n, 4, { data: Buffer.from("ok!!") });
    expect(await c.simpleReply()).toEqual({ error: 0, handle: 5n });
  });

  it("disconnects a client sending garbage or an oversized request, while others keep working", async () => {
    const path = await startServer(backend, { requestBytesMax: 64 * 1024 });
    const good = await client(path);
    await good.handshake("disk", false);
    const garbage = await client(path);
    await garbage.handshake("disk", false);
    garbage.socket.write(randomBytes(64));
    const oversized = await client(path);
    await oversized.handshake("disk", true);
    oversized.send(cmd.read, 1n, 0n, 64 * 1024 + 1);
    expect(await garbage.waitClosed()).toBe(true);
    expect(await oversized.waitClosed()).toBe(true);
    good.send(cmd.write, 7n, 0n, 3, { data: Buffer.from("abc") });
    expect(await good.simpleReply()).toEqual({ error: 0, handle: 7n });
  });

  it("closes the connection and lets the backend go when a client disconnects after NBD_CMD_DISC", async () => {
    // qemu-img and qemu-io send DISC and close at once; a socket that stopped reading after DISC
    // never saw their EOF, stayed half open and kept the image attached (its writer epoch held).
    let attached = 0;
    class Counting extends MemoryBackend {
      attach(): void {
        attached++;
      }
      detach(): void {
        attached--;
      }
    }
    const path = await startServer(new Counting(sizeBytes));
    const c = await client(path);
    await c.handshake("disk", false);
    c.send(cmd.read, 1n, 0n, 512);
    expect((await c.simpleReply()).error).toBe(0);
    expect(attached).toBe(1);
    c.send(cmd.disc, 2n, 0n, 0);
    c.socket.end();
    expect(await c.waitClosed()).toBe(true);
    const deadline = Date.now() + readTimeoutMs;
    while (attached !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(attached).toBe(0);
  });

  it("finishes in-flight requests on NBD_CMD_DISC and on server shutdown before closing", async () => {
    const gated = new GatedBackend(sizeBytes);
    const path = await startServer(gated);
    const a = await client(path);
    await a.handshake("disk", false);
    a.send(cmd.write, 1n, 0n, 2, { data: Buffer.from("hi") });
    a.send(cmd.disc, 2n, 0n, 0);
    const b = await client(path);
    await b.handshake("disk", false);
    b.send(cmd.write, 3n, 2n, 2, { data: Buffer.from("yo") });
    const deadline = Date.now() + readTimeoutMs;
    while (gated.running < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    const closing = server.close();
    await new Promise((r) => setTimeout(r, settleMs));
    expect(a.closed || b.closed).toBe(false);
    gated.release();
    expect(await a.simpleReply()).toEqual({ error: 0, handle: 1n });
    expect(await b.simpleReply()).toEqual({ error: 0, handle: 3n });
    await closing;
    expect(await a.waitClosed()).toBe(true);
    expect(await b.waitClosed()).toBe(true);
    expect((await gated.read(0, 4)).toString()).toBe("hiyo");
  });
});
