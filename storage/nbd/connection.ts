// One NBD client connection: runs the handshake, then the transmission phase. Requests are
// pipelined (up to inflightMax at once per connection, replies in completion order, matched by
// handle); replies completed in the same event-loop turn leave in one corked socket write.
// The socket reads into one buffer of the connection's, or straight into the payload being
// received (static-read.ts); WRITE payloads live in buffers leased from a pool and given back
// when the backend has settled the write (a backend does not keep a write's data past that).
import type { Socket } from "node:net";
import type { Logger } from "../../core/raft/types.ts";
import { errnoOf } from "./backend.ts";
import type { BlockBackend } from "./backend.ts";
import { ByteQueue } from "./byte-queue.ts";
import { sharedPayloadAllocator, type LeasePayload } from "../memory/payload.ts";
import { FrameReader, type ReadFrame } from "../socket/frame-reader.ts";
import { readInto } from "../socket/static-read.ts";
import { negotiate } from "./handshake.ts";
import type { ExportTable, HandshakeLimits, Negotiated } from "./handshake.ts";
import {
  cmd,
  cmdFlag,
  decodeRequest,
  encodeOffsetDataHeader,
  encodeSimpleReply,
  encodeStructuredError,
  encodeStructuredNone,
  errno,
  requestHeaderBytes,
  requestMagic,
} from "./protocol.ts";
import type { Request } from "./protocol.ts";

export interface ConnectionLimits {
  handshake: HandshakeLimits;
  /** Requests of one connection being served at once; further requests wait in the socket. */
  inflightMax: number;
  /** Largest READ or WRITE payload; a client that sends more is disconnected. */
  requestBytesMax: number;
  /** Replies queued on a client that does not read them before we stop taking requests. */
  outputBytesMax: number;
  handshakeTimeoutMs: number;
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(t: unknown): void;
  setImmediate(fn: () => void): void;
}

/** The connection's socket reads land in one buffer this large. */
const readBufferBytes = 64 * 1024;

/** A protocol violation by the client; the connection ends. */
class ClientProtocolError extends Error {}

const allowedFlags: Record<number, number> = {
  [cmd.read]: cmdFlag.fua | cmdFlag.df,
  [cmd.write]: cmdFlag.fua,
  [cmd.disc]: 0,
  [cmd.flush]: cmdFlag.fua,
  [cmd.trim]: cmdFlag.fua,
  [cmd.writeZeroes]: cmdFlag.fua | cmdFlag.noHole,
};

export class NbdConnection {
  /** Handshake bytes (copied); after the handshake, requests go through `reader`. */
  private readonly queue = new ByteQueue();
  private reader: FrameReader<Request> | null = null;
  private waiter: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | null = null;
  private session: Negotiated | null = null;
  private inflight = 0;
  private stopping = false;
  private closed = false;
  private corked = false;

  constructor(
    private readonly socket: Socket,
    private readonly exports: ExportTable,
    private readonly limits: ConnectionLimits,
    private readonly log: Logger,
    private readonly timers: Timers,
    private readonly leasePayload: LeasePayload = sharedPayloadAllocator(),
  ) {
    readInto(socket, readBufferBytes, {
      directTarget: () => (this.stopping ? null : (this.reader?.directTarget() ?? null)),
      directFilled: (n) => {
        this.reader!.directFilled(n);
        this.pump();
      },
      bytes: (b) => this.onBytes(b),
    });
    socket.on("drain", () => this.pump());
    socket.on("error", () => undefined); // "close" follows and does the cleanup
    socket.on("close", () => this.onClose());
  }

  /** Runs the connection until it closes. Never rejects: failures end the connection. */
  async run(): Promise<void> {
    const timer = this.timers.setTimeout(() => this.fail("handshake timed out"), this.limits.handshakeTimeoutMs);
    try {
      this.session = await negotiate(
        { read: (n) => this.read(n), write: (b) => void this.socket.write(b) },
        this.exports,
        this.limits.handshake,
      );
    } catch (err) {
      this.fail(err instanceof Error ? err.message : String(err));
      return;
    } finally {
      this.timers.clearTimeout(timer);
    }
    if (this.session === null) {
      this.socket.end();
      return;
    }
    this.log.debug("nbd client entered transmission", { export: this.session.name, structured: this.session.structuredReplies });
    const backend = this.session.backend;
    if (backend.attach) {
      backend.attach();
      this.socket.once("close", () => backend.detach?.());
    }
    this.reader = new FrameReader(requestHeaderBytes, (b) => this.decodeHeader(b), (r) => (r.type === cmd.write ? r.length : 0), (r, n) => this.leasePayload(n, Number(r.offset)));
    if (this.queue.length > 0) this.onBytes(this.queue.take(this.queue.length));
    else this.pump();
  }

  /** Stops taking requests; the socket ends once the in-flight ones are answered. */
  shutdown(): void {
    this.stopping = true;
    if (this.session === null) this.socket.destroy();
    else this.maybeFinish();
  }

  destroy(): void {
    this.stopping = true;
    this.socket.destroy();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private read(n: number): Promise<Buffer> {
    if (this.closed) return Promise.reject(new Error("connection closed during handshake"));
    if (this.queue.length >= n) return Promise.resolve(this.queue.take(n));
    return new Promise((resolve, reject) => (this.waiter = { n, resolve, reject }));
  }

  private decodeHeader(b: Buffer): Request {
    const req = decodeRequest(b);
    if (req.magic !== requestMagic) throw new ClientProtocolError(`bad request magic 0x${req.magic.toString(16)}`);
    if ((req.type === cmd.read || req.type === cmd.write) && req.length > this.limits.requestBytesMax) {
      throw new ClientProtocolError(`request of ${req.length} bytes exceeds ${this.limits.requestBytesMax}`);
    }
    return req;
  }

  /** Bytes valid only during the call; once stopping, requests are no longer taken and bytes are dropped. */
  private onBytes(bytes: Buffer): void {
    if (this.reader !== null) {
      if (this.stopping) return;
      try {
        this.reader.push(bytes);
      } catch (err) {
        this.fail((err as Error).message);
        return;
      }
      this.pump();
      return;
    }
    this.queue.push(Buffer.from(bytes));
    const w = this.waiter;
    if (w !== null) {
      if (this.queue.length >= w.n) {
        this.waiter = null;
        w.resolve(this.queue.take(w.n));
      }
    }
  }

  private onClose(): void {
    this.closed = true;
    this.reader?.discard();
    this.stopping = true;
    this.waiter?.reject(new Error("connection closed during handshake"));
    this.waiter = null;
  }

  private fail(reason: string): void {
    if (this.closed) return;
    this.log.warn("nbd client disconnected for a protocol error", { export: this.session?.name, reason });
    this.stopping = true;
    this.socket.destroy();
  }

  /** Takes every complete request the bounds allow and starts serving it. */
  private pump(): void {
    const s = this.session;
    const reader = this.reader;
    if (s === null || reader === null) return;
    while (!this.stopping && this.inflight < this.limits.inflightMax && this.socket.writableLength <= this.limits.outputBytesMax) {
      const f = reader.shift();
      if (f === null) break;
      if (f.header.type === cmd.disc) {
        f.lease?.release();
        this.stopping = true;
        break;
      }
      this.start(s, f);
    }
    const blocked = this.inflight >= this.limits.inflightMax || this.socket.writableLength > this.limits.outputBytesMax;
    // Stopping, the socket reads on (dropping what comes) so the client's EOF closes it: paused,
    // a socket reading into its own buffer would not see the EOF and stay half open.
    if (blocked && !this.stopping) this.socket.pause();
    else this.socket.resume();
    this.maybeFinish();
  }

  /** Serves one request; a WRITE's leased payload goes back once the backend settled it. */
  private start(s: Negotiated, f: ReadFrame<Request>): void {
    const req = f.header;
    const invalid = validate(s.backend, req);
    if (invalid !== null) {
      f.lease?.release();
      this.replyError(req, invalid.errno, invalid.message);
      return;
    }
    this.inflight++;
    serve(s.backend, req, f.payload).then(
      (data) => this.replyOk(req, data),
      (err: unknown) => this.replyError(req, errnoOf(err), err instanceof Error ? err.message : String(err)),
    ).finally(() => {
      f.lease?.release();
      this.inflight--;
      this.pump();
    });
  }

  private maybeFinish(): void {
    if (this.stopping && this.inflight === 0 && !this.closed) {
      this.uncork();
      this.socket.end();
    }
  }

  private replyOk(req: Request, data: Buffer | null): void {
    const structured = this.session?.structuredReplies === true;
    if (req.type !== cmd.read) return this.send(encodeSimpleReply(req.handle, 0));
    if (!structured) return this.send(encodeSimpleReply(req.handle, 0), data);
    if (data === null || data.length === 0) return this.send(encodeStructuredNone(req.handle));
    this.send(encodeOffsetDataHeader(req.handle, req.offset, data.length), data);
  }

  private replyError(req: Request, code: number, message: string): void {
    if (this.session?.structuredReplies === true) this.send(encodeStructuredError(req.handle, code, message));
    else this.send(encodeSimpleReply(req.handle, code));
  }

  private send(header: Buffer, data?: Buffer | null): void {
    if (this.closed || this.socket.destroyed) return;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      this.timers.setImmediate(() => this.uncork());
    }
    this.socket.write(header);
    if (data !== undefined && data !== null && data.length > 0) this.socket.write(data);
  }

  private uncork(): void {
    if (!this.corked) return;
    this.corked = false;
    this.socket.uncork();
  }
}

/** Checks flags and range; returns the error to answer with, or null when the request is fine. */
function validate(backend: BlockBackend, req: Request): { errno: number; message: string } | null {
  const allowed = allowedFlags[req.type];
  if (allowed === undefined) return { errno: errno.einval, message: `unsupported command ${req.type}` };
  if ((req.flags & ~allowed) !== 0) return { errno: errno.einval, message: `flags 0x${req.flags.toString(16)} not allowed on command ${req.type}` };
  if (req.type === cmd.flush) return null;
  if (req.offset + BigInt(req.length) > BigInt(backend.sizeBytes)) {
    const writes = req.type === cmd.write || req.type === cmd.writeZeroes;
    return { errno: writes ? errno.enospc : errno.einval, message: `range ${req.offset}+${req.length} is beyond the export size ${backend.sizeBytes}` };
  }
  return null;
}

async function serve(backend: BlockBackend, req: Request, payload: Buffer): Promise<Buffer | null> {
  const offset = Number(req.offset);
  const fua = (req.flags & cmdFlag.fua) !== 0;
  switch (req.type) {
    case cmd.read:
      return req.length === 0 ? Buffer.alloc(0) : backend.read(offset, req.length);
    case cmd.write:
      if (req.length === 0) return null;
      await backend.write(offset, payload, { fua });
      return null;
    case cmd.flush:
      await backend.flush();
      return null;
    case cmd.trim:
      if (req.length > 0) await backend.trim(offset, req.length);
      if (fua) await backend.flush();
      return null;
    case cmd.writeZeroes:
      if (req.length > 0) await backend.writeZeroes(offset, req.length, { fua, noHole: (req.flags & cmdFlag.noHole) !== 0 });
      return null;
    default:
      throw new Error(`unreachable command ${req.type}`);
  }
}
