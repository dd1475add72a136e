// The coordinator side of one replication channel to one brick for one image. Requests are
// pipelined with handles and sent through a FrameWriter; the channel is opened lazily (connect,
// then OPEN at the writer epoch) and re-opened after it breaks. A request without a reply within replicaTimeoutMs breaks the
// channel: every request in flight fails with "timeout" (one sweep timer, not one per request),
// and later replies on the dead channel cannot be confused with new ones.
import type { Duplex } from "node:stream";
import { ReplicationError } from "./errors.ts";
import { FrameWriter } from "./frame-writer.ts";
import type { ReplicationErrorCode } from "./errors.ts";
import { encodeRequestHeader, op, protocolLimits, replyDecoder, reqFlag, status, statusName } from "./protocol.ts";
import type { FrameDecoder, Reply, ReplyHeader } from "./protocol.ts";

export const replicaClientDefaults = {
  replicaTimeoutMs: 5_000,
  connectTimeoutMs: 5_000,
  /** Requests queued or in flight on one channel; more are refused (callers are bounded far below). */
  pendingMax: 4096,
} as const;

export interface ClientTimers {
  nowMs(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(t: unknown): void;
  setImmediate(fn: () => void): void;
}

export const realClientTimers: ClientTimers = {
  nowMs: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout),
  setImmediate: (fn) => void setImmediate(fn),
};

export interface ReplicaClientOptions {
  nodeId: string;
  imageId: string;
  epoch: number;
  sizeBytes: number;
  connect: () => Promise<Duplex>;
  replicaTimeoutMs?: number;
  connectTimeoutMs?: number;
  pendingMax?: number;
  timers?: ClientTimers;
}

interface Pending {
  handle: number;
  sentAtMs: number;
  what: string;
  resolve: (r: Reply) => void;
  reject: (e: ReplicationError) => void;
}

interface Channel {
  stream: Duplex;
  decoder: FrameDecoder<ReplyHeader>;
  pending: Map<number, Pending>;
  out: FrameWriter;
  dead: boolean;
}

export class ReplicaClient {
  readonly nodeId: string;
  private readonly o: Required<ReplicaClientOptions>;
  private channel: Channel | null = null;
  private opening: Promise<Channel> | null = null;
  private nextHandle = 1;
  private sweepTimer: unknown = null;
  private closed = false;

  constructor(options: ReplicaClientOptions) {
    this.nodeId = options.nodeId;
    this.o = {
      replicaTimeoutMs: replicaClientDefaults.replicaTimeoutMs,
      connectTimeoutMs: replicaClientDefaults.connectTimeoutMs,
      pendingMax: replicaClientDefaults.pendingMax,
      timers: realClientTimers,
      ...options,
    };
  }

  get isConnected(): boolean {
    return this.channel !== null && !this.channel.dead;
  }

  /** Connects and opens the image at the epoch unless already open (fails "stale_epoch" when fenced). */
  async open(): Promise<void> {
    await this.ready();
  }

  async write(offset: number, data: Buffer, fua: boolean): Promise<void> {
    const max = protocolLimits.dataBytesMax;
    if (data.length <= max) {
      await this.call(op.write, fua ? reqFlag.fua : 0, offset, 0, 0, data, "writing");
      return;
    }
    const parts: Promise<Reply>[] = [];
    for (let at = 0; at < data.length; at += max) {
      parts.push(this.call(op.write, fua ? reqFlag.fua : 0, offset + at, 0, 0, data.subarray(at, at + max), "writing"));
    }
    await Promise.all(parts);
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const max = protocolLimits.dataBytesMax;
    if (length <= max) return (await this.call(op.read, 0, offset, length, 0, null, "reading")).payload;
    const parts: Promise<Reply>[] = [];
    for (let at = 0; at < length; at += max) parts.push(this.call(op.read, 0, offset + at, Math.min(max, length - at), 0, null, "reading"));
    return Buffer.concat((await Promise.all(parts)).map((r) => r.payload));
  }

  async flush(): Promise<void> {
    await this.call(op.flush, 0, 0, 0, 0, null, "flushing");
  }

  async trim(offset: number, length: number, fua: boolean): Promise<void> {
    await this.call(op.trim, fua ? reqFlag.fua : 0, offset, length, 0, null, "trimming");
  }

  async writeZeroes(offset: number, length: number, options: { fua: boolean; noHole: boolean }): Promise<void> {
    const flags = (options.fua ? reqFlag.fua : 0) | (options.noHole ? reqFlag.noHole : 0);
    await this.call(op.writeZeroes, flags, offset, length, 0, null, "zeroing");
  }

  /** Digests (32 bytes per chunk) of [offset, offset+length); at most protocolLimits.checksumChunksMax chunks. */
  async checksums(offset: number, length: number, chunkBytes: number): Promise<Buffer> {
    return (await this.call(op.checksums, 0, offset, length, chunkBytes, null, "checksumming")).payload;
  }

  async grow(sizeBytes: number): Promise<void> {
    this.o.sizeBytes = Math.max(this.o.sizeBytes, sizeBytes);
    await this.call(op.grow, 0, sizeBytes, 0, 0, null, "growing");
  }

  /** Asks the brick to end the channel once its requests are answered; later requests fail "closed". */
  async close(): Promise<void> {
    this.closed = true;
    const ch = this.channel;
    if (ch === null || ch.dead) return;
    const bye = this.send(ch, op.close, 0, 0, 0, 0, null, "closing").catch(() => undefined);
    ch.out.flushNow();
    await bye;
    ch.stream.end();
    this.kill(ch, "closed", `channel to node ${this.nodeId} closed`);
  }

  /** Breaks the channel now (failing everything in flight with "closed"); the next request reconnects. */
  disconnect(reason = "disconnected"): void {
    if (this.channel !== null) this.kill(this.channel, "closed", `${reason}`);
  }

  private call(type: number, flags: number, offset: number, length: number, chunkBytes: number, payload: Buffer | null, what: string): Promise<Reply> {
    const ch = this.channel;
    if (ch !== null && !ch.dead) return this.send(ch, type, flags, offset, length, chunkBytes, payload, what);
    return this.ready().then((c) => this.send(c, type, flags, offset, length, chunkBytes, payload, what));
  }

  /**
   * Queues one request. The payload is referenced, not copied, until the request settles: a reply
   * means the brick has all of it, and a failure (timeout, closed) destroys the channel first, so
   * nothing sends it afterwards.
   */
  private send(ch: Channel, type: number, flags: number, offset: number, length: number, chunkBytes: number, payload: Buffer | null, what: string): Promise<Reply> {
    if (ch.dead) return Promise.reject(this.error("closed", `${what} at ${offset}: the channel broke`));
    if (ch.pending.size >= this.o.pendingMax) return Promise.reject(this.error("io", `${what} at ${offset}: ${this.o.pendingMax} requests already pending`));
    const handle = this.nextHandle++;
    const n = payload === null ? 0 : payload.length;
    const header = encodeRequestHeader({ op: type, flags, handle, epoch: this.o.epoch, offset, length, chunkBytes }, n);
    ch.out.push(header);
    if (payload !== null) ch.out.push(payload);
    if (ch.pending.size === 0) this.armSweep(ch);
    return new Promise<Reply>((resolve, reject) => {
      ch.pending.set(handle, { handle, sentAtMs: this.o.timers.nowMs(), what: `${what} at ${offset}`, resolve, reject });
    });
  }


  private ready(): Promise<Channel> {
    if (this.closed) return Promise.reject(this.error("closed", `image ${this.o.imageId}: client closed`));
    if (this.channel !== null && !this.channel.dead) return Promise.resolve(this.channel);
    this.opening ??= this.connectAndOpen().finally(() => (this.opening = null));
    return this.opening;
  }

  private async connectAndOpen(): Promise<Channel> {
    const { timers, connectTimeoutMs } = this.o;
    let timer: unknown = null;
    const timeout = new Promise<never>((_, reject) => {
      timer = timers.setTimeout(() => reject(this.error("timeout", `connecting to node ${this.nodeId}: no connection within ${connectTimeoutMs} ms`)), connectTimeoutMs);
    });
    let stream: Duplex;
    const connecting = this.o.connect();
    try {
      stream = await Promise.race([connecting, timeout]);
    } catch (err) {
      connecting.then((late) => late.destroy(), () => undefined); // a connection that arrives after the timeout is not used
      throw err instanceof ReplicationError ? err : this.error("closed", `connecting to node ${this.nodeId}: ${(err as Error).message}`, err);
    } finally {
      timers.clearTimeout(timer);
    }
    const out = new FrameWriter(stream, (fn) => this.o.timers.setImmediate(fn));
    const ch: Channel = { stream, decoder: replyDecoder(), pending: new Map(), out, dead: false };
    stream.on("data", (chunk: Buffer) => this.onData(ch, chunk));
    stream.on("error", (err: Error) => this.kill(ch, "closed", `channel to node ${this.nodeId} failed: ${err.message}`));
    stream.on("close", () => this.kill(ch, "closed", `channel to node ${this.nodeId} closed`));
    const opened = this.send(ch, op.open, 0, this.o.sizeBytes, 0, 0, Buffer.from(this.o.imageId, "utf8"), `opening image ${this.o.imageId}`);
    ch.out.flushNow();
    try {
      await opened;
    } catch (err) {
      this.kill(ch, "closed", "open failed");
      throw err;
    }
    if (this.closed) {
      this.kill(ch, "closed", "client closed");
      throw this.error("closed", `image ${this.o.imageId}: client closed`);
    }
    this.channel = ch;
    return ch;
  }

  private onData(ch: Channel, chunk: Buffer): void {
    ch.decoder.push(chunk);
    for (;;) {
      let reply: Reply | null;
      try {
        reply = ch.decoder.next();
      } catch (err) {
        this.kill(ch, "protocol", `channel to node ${this.nodeId}: ${(err as Error).message}`);
        return;
      }
      if (reply === null) return;
      const p = ch.pending.get(reply.handle);
      if (p === undefined) {
        this.kill(ch, "protocol", `channel to node ${this.nodeId}: reply for unknown handle ${reply.handle}`);
        return;
      }
      ch.pending.delete(reply.handle);
      if (reply.status === status.ok) p.resolve(reply);
      else p.reject(this.error(statusName(reply.status), `${p.what} on node ${this.nodeId}: ${reply.payload.toString("utf8")}`));
    }
  }

  private armSweep(ch: Channel): void {
    if (this.sweepTimer !== null) return;
    const period = Math.max(1, Math.ceil(this.o.replicaTimeoutMs / 4));
    this.sweepTimer = this.o.timers.setTimeout(() => {
      this.sweepTimer = null;
      this.sweep(ch);
    }, period);
  }

  /** Pending requests are in send order, so the first one is the oldest. */
  private sweep(ch: Channel): void {
    if (ch.dead) return;
    const oldest = ch.pending.values().next();
    if (oldest.done === true) return;
    const ageMs = this.o.timers.nowMs() - oldest.value.sentAtMs;
    if (ageMs >= this.o.replicaTimeoutMs) {
      this.kill(ch, "timeout", `node ${this.nodeId} did not answer within ${this.o.replicaTimeoutMs} ms`);
      return;
    }
    this.armSweep(ch);
  }

  private kill(ch: Channel, code: ReplicationErrorCode, message: string): void {
    if (ch.dead) return;
    ch.dead = true;
    if (this.channel === ch) this.channel = null;
    if (this.sweepTimer !== null) {
      this.o.timers.clearTimeout(this.sweepTimer);
      this.sweepTimer = null;
    }
    const pending = [...ch.pending.values()];
    ch.pending.clear();
    ch.stream.destroy();
    for (const p of pending) p.reject(this.error(code, `${p.what} on node ${this.nodeId}: ${message}`));
  }

  private error(code: ReplicationErrorCode, message: string, cause?: unknown): ReplicationError {
    return new ReplicationError(code, `image ${this.o.imageId}: ${message}`, cause === undefined ? undefined : { cause });
  }
}
