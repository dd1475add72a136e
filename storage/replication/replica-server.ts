// The brick side of the replication channel. serve() runs one channel over any Duplex (in
// production the TLS socket the peer listener hands over for ALPN "trivet-repl/1"): the first
// request must be OPEN(imageId, epoch, size); afterwards requests are served concurrently, up to
// inflightMax at once, replies leave in completion order, and replies finished in the same
// event-loop turn go out in one corked write. Every request is refused with stale_epoch once a
// newer epoch has opened the image (on any channel).
import type { Duplex } from "node:stream";
import type { Logger } from "../../core/raft/types.ts";
import { StorageError } from "../nbd/backend.ts";
import { sharedPayloadAllocator, type LeasePayload } from "../memory/payload.ts";
import { FrameReader } from "../socket/frame-reader.ts";
import { readInto } from "../socket/static-read.ts";
import { computeChecksums } from "./checksums.ts";
import { ReplicationError } from "./errors.ts";
import { fileEpochStore, ImageTable, openFileBrickImage } from "./image-table.ts";
import type { EpochStore, OpenBrickImage, OpenImage, ResolveImage } from "./image-table.ts";
import {
  checkChecksumsRequest,
  encodeReplyHeader,
  errorPayload,
  decodeRequestHeader,
  op,
  protocolLimits,
  ProtocolError,
  reqFlag,
  requestHeaderBytes,
  status,
} from "./protocol.ts";
import type { Request, RequestHeader } from "./protocol.ts";

export const replicaServerDefaults = {
  /** Requests of one channel served at once; more wait in the socket. */
  inflightMax: 128,
  /** Replies queued on a peer that does not read them before we stop taking requests. */
  outputBytesMax: 16 * 1024 * 1024,
  /** A channel's socket reads land in one buffer this large (a TLS record is at most 16 KiB). */
  readBufferBytes: 64 * 1024,
} as const;

export interface ServerTimers {
  setImmediate(fn: () => void): void;
}

export interface ReplicaServerOptions {
  resolveImage: ResolveImage;
  openImage?: OpenBrickImage;
  epochStore?: EpochStore;
  /**
   * The node's open images, when shared with a local coordinator (so both see the same file
   * and epoch); then resolveImage, openImage and epochStore are unused and close() leaves the
   * table to its owner.
   */
  images?: ImageTable;
  inflightMax?: number;
  outputBytesMax?: number;
  /** Memory for request payloads as they arrive; default the process-wide pools. */
  leasePayload?: LeasePayload;
  timers?: ServerTimers;
  log?: Logger;
}

const silentLog: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export class ReplicaServer {
  private readonly images: ImageTable;
  private readonly ownsImages: boolean;
  private readonly channels = new Set<ReplicaChannel>();
  readonly limits: { inflightMax: number; outputBytesMax: number };
  readonly timers: ServerTimers;
  readonly log: Logger;
  readonly leasePayload: LeasePayload;

  constructor(options: ReplicaServerOptions) {
    this.ownsImages = options.images === undefined;
    this.images = options.images ?? new ImageTable(options.resolveImage, options.openImage ?? openFileBrickImage, options.epochStore ?? fileEpochStore);
    this.limits = {
      inflightMax: options.inflightMax ?? replicaServerDefaults.inflightMax,
      outputBytesMax: options.outputBytesMax ?? replicaServerDefaults.outputBytesMax,
    };
    this.timers = options.timers ?? { setImmediate: (fn) => void setImmediate(fn) };
    this.log = options.log ?? silentLog;
    this.leasePayload = options.leasePayload ?? sharedPayloadAllocator();
  }

  /** Serves one channel until it closes. */
  serve(stream: Duplex): void {
    const ch = new ReplicaChannel(this, this.images, stream, () => this.channels.delete(ch));
    this.channels.add(ch);
  }

  /** Ends every channel and closes every open image (of its own table). */
  async close(): Promise<void> {
    for (const ch of this.channels) ch.destroy();
    this.channels.clear();
    if (this.ownsImages) await this.images.closeAll();
  }
}

/** A request whose payload (if any) is leased from the server's pool until release(). */
type LeasedRequest = Request & { release(): void };

class ReplicaChannel {
  private readonly reader: FrameReader<RequestHeader>;
  private image: OpenImage | null = null;
  private epoch = 0;
  private opening = false;
  private inflight = 0;
  private stopping = false;
  private closed = false;
  private corked = false;

  constructor(
    private readonly server: ReplicaServer,
    private readonly images: ImageTable,
    private readonly stream: Duplex,
    private readonly onGone: () => void,
  ) {
    this.reader = new FrameReader(requestHeaderBytes, decodeRequestHeader, (h) => h.payloadBytes, (h, n) => server.leasePayload(n, h.offset));
    readInto(stream, replicaServerDefaults.readBufferBytes, {
      directTarget: () => (this.stopping ? null : this.reader.directTarget()),
      directFilled: (n) => {
        this.reader.directFilled(n);
        this.pump();
      },
      bytes: (b) => this.onBytes(b),
    });
    stream.on("drain", () => this.pump());
    stream.on("error", () => undefined); // "close" follows
    stream.on("end", () => this.stop());
    stream.on("close", () => this.onClose());
  }

  destroy(): void {
    this.stopping = true;
    this.stream.destroy();
  }

  private stop(): void {
    this.stopping = true;
    this.maybeFinish();
  }

  /** Bytes valid only during the call; once stopping, requests are no longer taken and bytes are dropped. */
  private onBytes(bytes: Buffer): void {
    if (this.stopping) return;
    try {
      this.reader.push(bytes);
    } catch (err) {
      this.server.log.warn("replication channel closed for a protocol error", { image: this.image?.imageId, reason: (err as Error).message });
      this.destroy();
      return;
    }
    this.pump();
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.reader.discard();
    this.stopping = true;
    this.onGone();
    const image = this.image;
    this.image = null;
    if (image !== null && this.inflight === 0) void this.images.release(image);
    else if (image !== null) this.releaseWhenIdle = image;
  }

  private releaseWhenIdle: OpenImage | null = null;

  private pump(): void {
    const { inflightMax, outputBytesMax } = this.server.limits;
    while (!this.stopping && !this.opening && this.inflight < inflightMax && this.stream.writableLength <= outputBytesMax) {
      const f = this.reader.shift();
      if (f === null) break;
      const lease = f.lease;
      this.start({ ...f.header, payload: f.payload, release: () => lease?.release() });
    }
    const blocked = this.opening || this.inflight >= inflightMax || this.stream.writableLength > outputBytesMax;
    // Stopping, the stream reads on (dropping what comes) so the peer's EOF closes it: paused,
    // a socket reading into its own buffer would not see the EOF and stay half open.
    if (blocked && !this.stopping) this.stream.pause();
    else this.stream.resume();
    this.maybeFinish();
  }

  /** Serves req; its payload goes back to the pool once the request has settled. */
  private start(req: LeasedRequest): void {
    if (req.op === op.close) {
      req.release();
      this.stopping = true;
      this.reply(req.handle, status.ok, 0, null);
      return;
    }
    if (req.op === op.open) this.opening = true;
    this.inflight++;
    this.handle(req).then(
      (r) => this.reply(req.handle, status.ok, r.value, r.payload),
      (err: unknown) => this.replyError(req.handle, err),
    ).finally(() => {
      req.release();
      this.inflight--;
      if (req.op === op.open) this.opening = false;
      if (this.closed && this.inflight === 0 && this.releaseWhenIdle !== null) {
        void this.images.release(this.releaseWhenIdle);
        this.releaseWhenIdle = null;
      }
      this.pump();
    });
  }

  private async handle(req: Request): Promise<{ value: number; payload: Buffer | null }> {
    if (req.op === op.open) return this.open(req);
    const image = this.image;
    if (image === null) throw new ReplicationError("not_open", `request ${req.op} before OPEN`);
    if (req.epoch !== this.epoch) throw new ReplicationError("invalid_argument", `request at epoch ${req.epoch} on a channel opened at ${this.epoch}`);
    if (this.epoch < image.highestEpoch) {
      throw new ReplicationError("stale_epoch", `image ${image.imageId}: epoch ${this.epoch} is superseded by ${image.highestEpoch}`);
    }
    const b = image.backend;
    const fua = (req.flags & reqFlag.fua) !== 0;
    switch (req.op) {
      case op.write:
        await b.write(req.offset, req.payload, { fua });
        return none;
      case op.read:
        if (req.length > protocolLimits.dataBytesMax) throw new ReplicationError("invalid_argument", `read of ${req.length} bytes exceeds ${protocolLimits.dataBytesMax}`);
        return { value: 0, payload: await b.read(req.offset, req.length) };
      case op.flush:
        await b.flush();
        return none;
      case op.trim:
        await b.trim(req.offset, req.length);
        if (fua) await b.flush();
        return none;
      case op.writeZeroes:
        await b.writeZeroes(req.offset, req.length, { fua, noHole: (req.flags & reqFlag.noHole) !== 0 });
        return none;
      case op.checksums:
        return { value: 0, payload: await this.checksums(b, req) };
      case op.grow:
        await this.images.grow(image, req.offset);
        return { value: image.backend.sizeBytes, payload: null };
      default:
        throw new ReplicationError("invalid_argument", `unknown request type ${req.op}`);
    }
  }

  private async open(req: Request): Promise<{ value: number; payload: null }> {
    if (this.image !== null) throw new ReplicationError("invalid_argument", "OPEN on a channel that is already open");
    if (req.payload.length === 0 || req.payload.length > protocolLimits.imageIdBytesMax) {
      throw new ReplicationError("invalid_argument", `image id of ${req.payload.length} bytes`);
    }
    const imageId = req.payload.toString("utf8");
    const image = await this.images.acquire(imageId, req.epoch, req.offset);
    if (this.closed) {
      await this.images.release(image);
      throw new ReplicationError("closed", `opening image ${imageId}: channel closed`);
    }
    this.image = image;
    this.epoch = req.epoch;
    this.server.log.debug("replication channel opened", { image: imageId, epoch: req.epoch });
    return { value: image.backend.sizeBytes, payload: null };
  }

  private checksums(b: OpenImage["backend"], req: Request): Promise<Buffer> {
    const invalid = checkChecksumsRequest(req.length, req.chunkBytes);
    if (invalid !== null) throw new ReplicationError("invalid_argument", `checksums: ${invalid}`);
    if (req.offset + req.length > b.sizeBytes) throw new ReplicationError("out_of_range", `checksums of ${req.offset}+${req.length} beyond ${b.sizeBytes}`);
    return computeChecksums((o, n) => b.read(o, n), req.offset, req.length, req.chunkBytes);
  }

  private replyError(handle: number, err: unknown): void {
    const code = errorStatus(err);
    const value = code === status.stale_epoch && this.image !== null ? this.image.highestEpoch : 0;
    this.reply(handle, code, value, errorPayload(err instanceof Error ? err.message : String(err)));
  }

  private reply(handle: number, code: number, value: number, payload: Buffer | null): void {
    if (this.closed || this.stream.destroyed) return;
    if (!this.corked) {
      this.corked = true;
      this.stream.cork();
      this.server.timers.setImmediate(() => this.uncork());
    }
    const n = payload === null ? 0 : payload.length;
    this.stream.write(encodeReplyHeader({ status: code, handle, value }, n));
    if (payload !== null && n > 0) this.stream.write(payload);
  }

  private uncork(): void {
    if (!this.corked) return;
    this.corked = false;
    this.stream.uncork();
  }

  private maybeFinish(): void {
    if (this.stopping && this.inflight === 0 && !this.closed && !this.stream.writableEnded) {
      this.uncork();
      this.stream.end();
    }
  }
}

const none = { value: 0, payload: null };

function errorStatus(err: unknown): number {
  if (err instanceof ReplicationError || err instanceof StorageError) {
    switch (err.code) {
      case "stale_epoch":
        return status.stale_epoch;
      case "no_space":
        return status.no_space;
      case "invalid_argument":
        return status.invalid_argument;
      case "out_of_range":
        return status.out_of_range;
      case "not_open":
        return status.not_open;
      default:
        return status.io;
    }
  }
  if (err instanceof ProtocolError) return status.invalid_argument;
  const code = (err as { code?: unknown } | null)?.code;
  return code === "ENOSPC" || code === "EDQUOT" ? status.no_space : status.io;
}
