// readInto over real sockets (TCP and unix on this host, mutual TLS over loopback) and a plain
// Duplex: the sink must get exactly the bytes sent, in order, through the socket's one static
// buffer or in place into the sink's direct target, and pause/resume/'end' must still work.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { PassThrough, type Duplex } from "node:stream";
import tls from "node:tls";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createClusterCa, createCsr, generateNodeKey, newSerial, signNodeCert } from "../../core/cluster/pki.ts";
import { chainOf, type TlsIdentity } from "../../core/cluster/tls.ts";
import { readInto, type ReadSink } from "./static-read.ts";

const MiB = 1024 * 1024;
/** Every wait for the peer is bounded by this. */
const exchangeTimeoutMs = 15_000;
/** How long a paused socket must stay silent while its peer keeps sending. */
const pausedQuietMs = 200;
/** Odd, and far below the 64 KiB a 'data' chunk may hold: a larger chunk means reads bypassed the buffer. */
const bufferBytes = 7919;

/** Seeded xorshift32 bytes, so a failing stream is reproducible from its seed. */
function pseudoRandomBytes(n: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(n + 3);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i += 4) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out.writeUInt32LE(s, i);
  }
  return out.subarray(0, n);
}

/** Writes data in odd-sized pieces (1 byte to ~100 KiB) chosen by seed. */
function writeOddSizes(stream: { write(b: Buffer): boolean }, data: Buffer, seed: number): void {
  const sizes = pseudoRandomBytes(4 * 1024, seed);
  for (let at = 0, i = 0; at < data.length; i++) {
    const r = sizes.readUInt32LE((i * 4) % (sizes.length - 3));
    const n = i % 5 === 0 ? 1 + (r % 13) : (r % 100_000) | 1;
    stream.write(data.subarray(at, at + n));
    at += n;
  }
}

function withTimeout<T>(p: Promise<T>, what: string, timeoutMs = exchangeTimeoutMs): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result after ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Copies everything it is handed into one buffer, recording how it was handed over. */
class CollectSink implements ReadSink {
  readonly received: Buffer;
  count = 0;
  maxChunkBytes = 0;
  readonly memories = new Set<ArrayBufferLike>();
  onBytes: (() => void) | null = null;

  constructor(capacityBytes: number) {
    this.received = Buffer.alloc(capacityBytes);
  }

  directTarget(): Buffer | null {
    return null;
  }

  directFilled(n: number): void {
    throw new Error(`directFilled(${n}) without a direct target`);
  }

  bytes(b: Buffer): void {
    b.copy(this.received, this.count);
    this.count += b.length;
    this.maxChunkBytes = Math.max(this.maxChunkBytes, b.length);
    this.memories.add(b.buffer);
    this.onBytes?.();
  }
}

/**
 * Frames of u32 length + payload; payloads land back to back in dest, read in place while one is
 * open. A stand-in for FrameReader that also records how the bytes came.
 */
class DirectSink implements ReadSink {
  readonly dest: Buffer;
  destAt = 0;
  private readonly header = Buffer.alloc(4);
  private headerFilled = 0;
  private payloadLeft = 0;
  directBytes = 0;
  directCalls = 0;
  maxChunkBytes = 0;
  errors: string[] = [];

  constructor(capacityBytes: number) {
    this.dest = Buffer.alloc(capacityBytes);
  }

  directTarget(): Buffer | null {
    if (this.payloadLeft === 0) return null;
    // A misparsed header could ask for more than dest holds; an empty or short target would stall
    // the socket (or spin TLS), so refuse and let the byte count fail the test instead.
    if (this.destAt + this.payloadLeft > this.dest.length) {
      this.errors.push(`payload of ${this.payloadLeft} bytes at ${this.destAt} overruns ${this.dest.length}`);
      return null;
    }
    return this.dest.subarray(this.destAt, this.destAt + this.payloadLeft);
  }

  directFilled(n: number): void {
    if (n > this.payloadLeft) this.errors.push(`directFilled(${n}) with ${this.payloadLeft} left`);
    this.directBytes += n;
    this.directCalls++;
    this.destAt += n;
    this.payloadLeft -= n;
  }

  bytes(b: Buffer): void {
    this.maxChunkBytes = Math.max(this.maxChunkBytes, b.length);
    for (let at = 0; at < b.length; ) {
      if (this.payloadLeft > 0) {
        const n = Math.min(this.payloadLeft, b.length - at);
        b.copy(this.dest, this.destAt, at, at + n);
        this.destAt += n;
        this.payloadLeft -= n;
        at += n;
        continue;
      }
      const n = Math.min(4 - this.headerFilled, b.length - at);
      b.copy(this.header, this.headerFilled, at, at + n);
      this.headerFilled += n;
      at += n;
      if (this.headerFilled === 4) {
        this.headerFilled = 0;
        this.payloadLeft = this.header.readUInt32BE(0);
      }
    }
  }
}

/** Frames for DirectSink: large payloads (read in place) mixed with small and empty ones. */
function framesOf(payloadSizes: number[], seed: number): { wire: Buffer; payloads: Buffer } {
  const payloads = pseudoRandomBytes(payloadSizes.reduce((a, b) => a + b, 0), seed);
  const parts: Buffer[] = [];
  let at = 0;
  for (const n of payloadSizes) {
    const h = Buffer.alloc(4);
    h.writeUInt32BE(n, 0);
    parts.push(h, payloads.subarray(at, at + n));
    at += n;
  }
  return { wire: Buffer.concat(parts), payloads };
}

const frameSizes = [MiB, 17, 0, 300_000, 2 * MiB + 3, 1, 0, 65_536, MiB];

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

let dir = "";
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "trivet-static-read-"));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

interface Accepted {
  socket: net.Socket;
  mode: "static" | "events";
  ended: Promise<void>;
}

/** A net server whose first accepted socket is switched with readInto in the 'connection' turn. */
async function netServer(sink: ReadSink, listenOn: number | string): Promise<{ connect: () => net.Socket; accepted: Promise<Accepted> }> {
  let accept!: (a: Accepted) => void;
  const accepted = new Promise<Accepted>((resolve) => (accept = resolve));
  const server = net.createServer((socket) => {
    cleanups.push(() => socket.destroy());
    const mode = readInto(socket, bufferBytes, sink);
    accept({ socket, mode, ended: new Promise((resolve) => socket.once("end", resolve)) });
  });
  cleanups.push(() => server.close());
  await withTimeout(new Promise<void>((resolve) => server.listen(listenOn, resolve)), "listening");
  const connect = (): net.Socket => {
    const client = typeof listenOn === "string" ? net.connect(listenOn) : net.connect((server.address() as net.AddressInfo).port, "127.0.0.1");
    cleanups.push(() => client.destroy());
    return client;
  };
  return { connect, accepted };
}

function sha256(b: Buffer): string {
  return createHash("sha256").update(b).digest("hex");
}

describe("readInto on a net socket", () => {
  for (const transport of ["tcp", "unix"] as const) {
    it(`delivers several MiB sent over ${transport} exactly, through one static buffer, then 'end'`, async () => {
      const data = pseudoRandomBytes(5 * MiB + 123, transport === "tcp" ? 11 : 12);
      const sink = new CollectSink(data.length);
      const { connect, accepted } = await netServer(sink, transport === "tcp" ? 0 : path.join(dir, "plain.sock"));
      const client = connect();
      writeOddSizes(client, data, 5);
      client.end();
      const a = await withTimeout(accepted, "accepting");
      expect(a.mode).toBe("static");
      await withTimeout(a.ended, "server 'end'");
      expect(sink.count).toBe(data.length);
      expect(sha256(sink.received)).toBe(sha256(data));
      // Had reads gone through 'data' events, chunks would be fresh buffers of up to 64 KiB.
      expect(sink.maxChunkBytes).toBeLessThanOrEqual(bufferBytes);
      expect(sink.memories.size).toBe(1);
    });
  }

  it("reads the rest of an open payload in place into the sink's direct target", async () => {
    const { wire, payloads } = framesOf(frameSizes, 21);
    const sink = new DirectSink(payloads.length);
    const { connect, accepted } = await netServer(sink, 0);
    const client = connect();
    writeOddSizes(client, wire, 6);
    client.end();
    const a = await withTimeout(accepted, "accepting");
    await withTimeout(a.ended, "server 'end'");
    expect(sink.errors).toEqual([]);
    expect(sink.destAt).toBe(payloads.length);
    expect(sink.dest.equals(payloads)).toBe(true);
    expect(sink.directCalls).toBeGreaterThan(0);
    expect(sink.directBytes).toBeGreaterThan(0);
    expect(sink.maxChunkBytes).toBeLessThanOrEqual(bufferBytes);
  });

  it("stops delivering while paused and delivers everything after resume()", async () => {
    const first = pseudoRandomBytes(MiB, 31);
    const second = pseudoRandomBytes(2 * MiB + 5, 32);
    const sink = new CollectSink(first.length + second.length);
    const { connect, accepted } = await netServer(sink, 0);
    let paused!: () => void;
    const pausedNow = new Promise<void>((resolve) => (paused = resolve));
    const client = connect();
    const a = await withTimeout(accepted, "accepting");
    sink.onBytes = () => {
      if (sink.count < 100_000) return;
      sink.onBytes = null;
      a.socket.pause();
      paused();
    };
    writeOddSizes(client, first, 7);
    await withTimeout(pausedNow, "first bytes");
    const countAtPause = sink.count;
    expect(countAtPause).toBeLessThan(first.length);
    writeOddSizes(client, second, 8);
    client.end();
    await sleep(pausedQuietMs);
    expect(sink.count).toBe(countAtPause);
    a.socket.resume();
    await withTimeout(a.ended, "server 'end' after resume");
    expect(sink.count).toBe(first.length + second.length);
    expect(sink.received.equals(Buffer.concat([first, second]))).toBe(true);
  });
});

describe("readInto on the server side of mutual TLS", () => {
  let serverId: TlsIdentity;
  let clientId: TlsIdentity;

  beforeAll(async () => {
    const ca = await createClusterCa({ clusterName: "staticread", nowMs: Date.now() });
    const identity = async (nodeName: string): Promise<TlsIdentity> => {
      const { keyPem } = await generateNodeKey();
      const csrPem = await createCsr({ nodeName, addresses: ["127.0.0.1"], keyPem });
      const certPem = await signNodeCert({ ca, csrPem, nodeName, addresses: ["127.0.0.1"], nowMs: Date.now(), serial: newSerial() });
      return { caPem: ca.certPem, certPem, keyPem };
    };
    serverId = await identity("server");
    clientId = await identity("client");
  }, 30_000);

  /**
   * Connects a TLS client that writes `early` as soon as tls.connect returns (before any
   * handshake) and `rest` once connected; the server switches the socket with readInto after
   * switchWhen() resolves (at once: in the 'secureConnection' turn).
   */
  async function tlsExchange(sink: ReadSink, early: Buffer, rest: Buffer, switchWhen?: (s: tls.TLSSocket) => Promise<void>): Promise<Accepted> {
    let accept!: (a: Accepted) => void;
    let fail!: (e: unknown) => void;
    const accepted = new Promise<Accepted>((resolve, reject) => ((accept = resolve), (fail = reject)));
    const server = tls.createServer({ cert: chainOf(serverId), key: serverId.keyPem, ca: serverId.caPem, requestCert: true, rejectUnauthorized: true, minVersion: "TLSv1.3" });
    server.on("tlsClientError", (err) => fail(err));
    server.on("secureConnection", (socket) => {
      cleanups.push(() => socket.destroy());
      const ended = new Promise<void>((resolve) => socket.once("end", resolve));
      const switchNow = (): void => accept({ socket, mode: readInto(socket, bufferBytes, sink), ended });
      if (switchWhen === undefined) switchNow();
      else switchWhen(socket).then(switchNow, fail);
    });
    cleanups.push(() => server.close());
    await withTimeout(new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve)), "listening");
    const port = (server.address() as net.AddressInfo).port;
    const client = tls.connect({ host: "127.0.0.1", port, ca: clientId.caPem, cert: chainOf(clientId), key: clientId.keyPem, minVersion: "TLSv1.3" });
    cleanups.push(() => client.destroy());
    client.on("error", (err) => fail(err));
    writeOddSizes(client, early, 9);
    client.once("secureConnect", () => {
      writeOddSizes(client, rest, 10);
      client.end();
    });
    return withTimeout(accepted, "TLS accept");
  }

  it("delivers several MiB exactly, including bytes written before the handshake finished", async () => {
    const early = pseudoRandomBytes(300_001, 41);
    const rest = pseudoRandomBytes(4 * MiB + 7, 42);
    const sink = new CollectSink(early.length + rest.length);
    const a = await tlsExchange(sink, early, rest);
    expect(a.mode).toBe("static");
    await withTimeout(a.ended, "server 'end'");
    expect(sink.count).toBe(early.length + rest.length);
    expect(sha256(sink.received)).toBe(sha256(Buffer.concat([early, rest])));
    expect(sink.maxChunkBytes).toBeLessThanOrEqual(bufferBytes);
  });

  it("delivers bytes buffered before a late switch first, then the rest in order", async () => {
    const early = pseudoRandomBytes(200_003, 43);
    const rest = pseudoRandomBytes(3 * MiB + 1, 44);
    const sink = new CollectSink(early.length + rest.length);
    let bufferedAtSwitch = 0;
    const a = await tlsExchange(sink, early, rest, async (socket) => {
      const deadline = Date.now() + exchangeTimeoutMs;
      while (socket.readableLength === 0 && Date.now() < deadline) await sleep(5);
      bufferedAtSwitch = socket.readableLength;
    });
    expect(bufferedAtSwitch).toBeGreaterThan(0); // else this test did not exercise the early path
    expect(a.mode).toBe("static");
    await withTimeout(a.ended, "server 'end'");
    expect(sink.count).toBe(early.length + rest.length);
    expect(sha256(sink.received)).toBe(sha256(Buffer.concat([early, rest])));
  });

  it("reads payloads in place over TLS too", async () => {
    const { wire, payloads } = framesOf(frameSizes, 45);
    const sink = new DirectSink(payloads.length);
    const a = await tlsExchange(sink, wire.subarray(0, 1000), wire.subarray(1000));
    await withTimeout(a.ended, "server 'end'");
    expect(sink.errors).toEqual([]);
    expect(sink.destAt).toBe(payloads.length);
    expect(sink.dest.equals(payloads)).toBe(true);
    expect(sink.directBytes).toBeGreaterThan(0);
  });
});

describe("readInto on a stream that is not a socket", () => {
  it("falls back to 'data' events and delivers every byte in order", async () => {
    const data = pseudoRandomBytes(3 * MiB + 9, 51);
    const sink = new CollectSink(data.length);
    const stream: Duplex = new PassThrough();
    const head = data.subarray(0, 1000);
    stream.write(head); // buffered before the switch: must come first
    expect(readInto(stream, bufferBytes, sink)).toBe("events");
    const ended = new Promise<void>((resolve) => stream.once("end", resolve));
    writeOddSizes(stream, data.subarray(head.length), 13);
    stream.end();
    await withTimeout(ended, "'end'");
    expect(sink.count).toBe(data.length);
    expect(sink.received.equals(data)).toBe(true);
  });
});
