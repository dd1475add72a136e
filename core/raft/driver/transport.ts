// The node-to-node transport of Raft messages, as the driver sees it. Implementations: gRPC
// (grpc-transport.ts, used by real nodes) and an in-process hub (memory-transport.ts, used by
// driver tests). Both pass the shared contract in transport.contract.ts.
import type { Message, NodeId } from "../types.ts";

export interface TransportHandlers {
  /** Messages that arrived from peers, in arrival order per peer. */
  deliver(messages: Message[]): void;
  /** A peer could not be reached; Raft should slow down probing it. */
  unreachable(id: NodeId): void;
  /** Whether a snapshot message reached the peer whole. */
  snapshotStatus(id: NodeId, ok: boolean): void;
}

export interface Transport {
  /** Starts listening; handlers are called from then on. Resolves once ready to receive. */
  start(handlers: TransportHandlers): Promise<void>;
  /** Adds or updates the address of a peer. */
  setPeer(id: NodeId, address: string): void;
  removePeer(id: NodeId): void;
  /**
   * Queues messages for their recipients and returns at once. Never blocks the caller: when a
   * peer's queue is full the newest messages to it are dropped and the peer reported
   * unreachable (Raft retransmits what matters).
   */
  send(messages: readonly Message[]): void;
  stop(): Promise<void>;
}

export class TransportError extends Error {
  constructor(
    readonly code: "peer_unknown" | "queue_full" | "closed" | "protocol",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "TransportError";
  }
}
