// Raft transport over gRPC (@grpc/grpc-js). Each node serves `trivet.raft.v1.Raft` and keeps
// one long-lived client stream per peer, onto which queued messages are flushed as framed
// batches (codec.ts) once per event-loop turn — many Raft messages share one HTTP/2 write.
// Snapshots travel on a separate stream in bounded chunks so a large state image never blocks
// heartbeats. Credentials are injected: mutual TLS arrives with the cluster (issue 4); tests
// and the bench may use insecure loopback credentials.
import * as grpc from "@grpc/grpc-js";
import { MessageType, type Message, type NodeId } from "../types.ts";
import { listenGrpc } from "../../api/grpc-listen.ts";
import { decodeBatch, encodeBatch, Reader, Writer } from "./codec.ts";
import type { Transport, TransportHandlers } from "./transport.ts";

export interface GrpcTransportOptions {
  id: NodeId;
  /** host:port to listen on. */
  listen: string;
  /**
   * Serves the gRPC server some other way than binding `listen` itself (the daemon's peer
   * listener shares one mutual-TLS port between Raft and storage replication); resolves with
   * the port.
   */
  bind?: (server: grpc.Server) => Promise<number>;
  serverCredentials?: grpc.ServerCredentials;
  channelCredentials?: grpc.ChannelCredentials;
  /** Messages queued for one peer before newer ones are dropped. */
  peerQueueMessagesMax?: number;
  /** Upper bound of one frame on the wire; larger batches are split. */
  frameBytesMax?: number;
  snapshotChunkBytes?: number;
  snapshotBytesMax?: number;
}

const PEER_QUEUE_MESSAGES_MAX = 8192;
const FRAME_BYTES_MAX = 4 * 1024 * 1024;
const SNAPSHOT_CHUNK_BYTES = 1024 * 1024;
const SNAPSHOT_BYTES_MAX = 1024 * 1024 * 1024;
const GRPC_MESSAGE_BYTES_MAX = 16 * 1024 * 1024;
const CHUNK_HEADER = 0;
const CHUNK_DATA = 1;

const passthrough = {
  requestSerialize: (b: Buffer) => b,
  requestDeserialize: (b: Buffer) => b,
  responseSerialize: (b: Buffer) => b,
  responseDeserialize: (b: Buffer) => b,
};

export const raftServiceDefinition = {
  send: { path: "/trivet.raft.v1.Raft/Send", requestStream: true, responseStream: false, ...passthrough },
  snapshot: { path: "/trivet.raft.v1.Raft/Snapshot", requestStream: true, responseStream: false, ...passthrough },
} satisfies grpc.ServiceDefinition;

const RaftClient = grpc.makeGenericClientConstructor(raftServiceDefinition, "Raft");
type RaftClientInstance = InstanceType<typeof RaftClient> & {
  send(cb: (err: grpc.ServiceError | null) => void): grpc.ClientWritableStream<Buffer>;
  snapshot(cb: (err: grpc.ServiceError | null) => void): grpc.ClientWritableStream<Buffer>;
};

export const channelOptions: grpc.ChannelOptions = {
  "grpc.max_receive_message_length": GRPC_MESSAGE_BYTES_MAX,
  "grpc.max_send_message_length": GRPC_MESSAGE_BYTES_MAX,
  "grpc.keepalive_time_ms": 2000,
  "grpc.keepalive_timeout_ms": 2000,
  "grpc.keepalive_permit_without_calls": 1,
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 1000,
};

interface Peer {
  id: NodeId;
  address: string;
  client: RaftClientInstance;
  stream?: grpc.ClientWritableStream<Buffer>;
  queue: Message[];
  /** The stream's buffer is full; messages wait in `queue` for its drain event. */
  congested: boolean;
}

export class GrpcTransport implements Transport {
  private readonly server = new grpc.Server({ "grpc.max_receive_message_length": GRPC_MESSAGE_BYTES_MAX });
  private readonly peers = new Map<NodeId, Peer>();
  private handlers?: TransportHandlers;
  private stopped = false;
  private readonly queueMax: number;
  private readonly frameBytesMax: number;
  private readonly chunkBytes: number;
  private readonly snapshotBytesMax: number;
  /** The port actually bound (useful with port 0). */
  port = 0;

  constructor(private readonly options: GrpcTransportOptions) {
    this.queueMax = options.peerQueueMessagesMax ?? PEER_QUEUE_MESSAGES_MAX;
    this.frameBytesMax = options.frameBytesMax ?? FRAME_BYTES_MAX;
    this.chunkBytes = options.snapshotChunkBytes ?? SNAPSHOT_CHUNK_BYTES;
    this.snapshotBytesMax = options.snapshotBytesMax ?? SNAPSHOT_BYTES_MAX;
  }

  async start(handlers: TransportHandlers): Promise<void> {
    this.handlers = handlers;
    this.server.addService(raftServiceDefinition, {
      send: (call: grpc.ServerReadableStream<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => this.serveSend(call, cb),
      snapshot: (call: grpc.ServerReadableStream<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => this.serveSnapshot(call, cb),
    });
    if (this.options.bind) {
      this.port = await this.options.bind(this.server);
      return;
    }
    const creds = this.options.serverCredentials ?? grpc.ServerCredentials.createInsecure();
    this.port = await listenGrpc(this.server, this.options.listen, creds);
  }

  setPeer(id: NodeId, address: string): void {
    const existing = this.peers.get(id);
    if (existing?.address === address) return;
    if (existing) this.closePeer(existing);
    const creds = this.options.channelCredentials ?? grpc.credentials.createInsecure();
    const client = new RaftClient(address, creds, channelOptions) as RaftClientInstance;
    this.peers.set(id, { id, address, client, queue: [], congested: false });
  }

  removePeer(id: NodeId): void {
    const peer = this.peers.get(id);
    if (peer) this.closePeer(peer);
    this.peers.delete(id);
  }

  /**
   * Writes at once (no deferral to a later turn): the driver relies on the frames being handed
   * to HTTP/2 before it blocks the thread in an fsync, so the leader's appends travel while it
   * writes its own copy. A congested stream queues (bounded) until it drains.
   */
  send(messages: readonly Message[]): void {
    const touched = new Set<Peer>();
    for (const m of messages) {
      const peer = this.peers.get(m.to);
      if (!peer) continue; // a peer not (yet) in the configuration: Raft retries once it is
      if (m.type === MessageType.Snap) {
        this.sendSnapshot(peer, m);
        continue;
      }
      if (peer.queue.length >= this.queueMax) {
        this.handlers?.unreachable(peer.id);
        continue;
      }
      peer.queue.push(m);
      touched.add(peer);
    }
    for (const peer of touched) if (!peer.congested) this.flushPeer(peer);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const peer of this.peers.values()) this.closePeer(peer);
    this.peers.clear();
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
    this.server.forceShutdown();
  }

  private closePeer(peer: Peer): void {
    peer.stream?.end();
    peer.stream = undefined;
    peer.client.close();
  }

  private flushPeer(peer: Peer): void {
    if (this.stopped || peer.queue.length === 0) return;
    const batch = peer.queue;
    peer.queue = [];
    const stream = this.streamTo(peer);
    let writable = true;
    for (const frame of this.frames(batch)) writable = stream.write(frame);
    if (!writable) {
      peer.congested = true;
      stream.once("drain", () => {
        peer.congested = false;
        this.flushPeer(peer);
      });
    }
  }

  /** Splits a batch into frames of at most frameBytesMax (a single huge message still goes alone). */
  private *frames(batch: Message[]): Generator<Buffer> {
    let start = 0;
    let bytes = 0;
    for (let i = 0; i < batch.length; i++) {
      const size = batch[i]!.entries.reduce((n, e) => n + e.data.length + 24, 64);
      if (i > start && bytes + size > this.frameBytesMax) {
        yield encodeBatch(batch.slice(start, i));
        start = i;
        bytes = 0;
      }
      bytes += size;
    }
    yield encodeBatch(start === 0 ? batch : batch.slice(start));
  }

  private streamTo(peer: Peer): grpc.ClientWritableStream<Buffer> {
    if (peer.stream) return peer.stream;
    const stream = peer.client.send((err) => {
      if (peer.stream === stream) peer.stream = undefined;
      if (err && !this.stopped) this.handlers?.unreachable(peer.id);
    });
    stream.on("error", () => {
      if (peer.stream === stream) peer.stream = undefined;
      peer.congested = false;
    });
    peer.stream = stream;
    return stream;
  }

  private sendSnapshot(peer: Peer, m: Message): void {
    const snap = m.snapshot!;
    const header = new Writer(128);
    header.u8(CHUNK_HEADER);
    header.uvarint(snap.data.length);
    header.bytes(encodeBatch([{ ...m, snapshot: { metadata: snap.metadata, data: new Uint8Array(0) } }]));
    const call = peer.client.snapshot((err) => {
      if (!this.stopped) this.handlers?.snapshotStatus(peer.id, !err);
    });
    call.on("error", () => undefined);
    call.write(header.finish());
    for (let off = 0; off < snap.data.length; off += this.chunkBytes) {
      const w = new Writer(this.chunkBytes + 16);
      w.u8(CHUNK_DATA);
      w.bytes(snap.data.subarray(off, off + this.chunkBytes));
      call.write(w.finish());
    }
    call.end();
  }

  private serveSend(call: grpc.ServerReadableStream<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>): void {
    call.on("data", (frame: Buffer) => {
      let messages: Message[];
      try {
        messages = decodeBatch(frame);
      } catch (err) {
        call.destroy(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      this.handlers?.deliver(messages);
    });
    call.on("end", () => cb(null, Buffer.alloc(0)));
    call.on("error", () => undefined);
  }

  private serveSnapshot(call: grpc.ServerReadableStream<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>): void {
    let message: Message | undefined;
    let data: Buffer | undefined;
    let received = 0;
    let failed = false;
    const fail = (reason: string) => {
      if (failed) return;
      failed = true;
      cb({ code: grpc.status.INVALID_ARGUMENT, details: `snapshot stream: ${reason}` });
    };
    call.on("data", (chunk: Buffer) => {
      if (failed) return;
      try {
        const r = new Reader(chunk);
        const kind = r.u8();
        if (kind === CHUNK_HEADER) {
          const total = r.uvarint();
          if (total > this.snapshotBytesMax) return fail(`snapshot of ${total} bytes exceeds the limit of ${this.snapshotBytesMax}`);
          message = decodeBatch(r.bytes())[0];
          data = Buffer.allocUnsafe(total);
        } else if (kind === CHUNK_DATA && data) {
          const part = r.bytes();
          if (received + part.length > data.length) return fail("more data than announced");
          data.set(part, received);
          received += part.length;
        } else {
          return fail(`unexpected chunk kind ${kind}`);
        }
      } catch (err) {
        fail(err instanceof Error ? err.message : String(err));
      }
    });
    call.on("end", () => {
      if (failed) return;
      if (!message?.snapshot || !data || received !== data.length) return fail(`incomplete: ${received} of ${data?.length ?? "?"} bytes`);
      message.snapshot = { metadata: message.snapshot.metadata, data };
      this.handlers?.deliver([message]);
      cb(null, Buffer.alloc(0));
    });
    call.on("error", () => undefined);
  }
}
