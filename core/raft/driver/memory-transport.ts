// In-process transport: a hub that hands message batches between RaftHosts in one process,
// asynchronously (next event-loop turn) like a network would. Used by driver tests; passes the
// same contract as the gRPC transport.
import type { Message, NodeId } from "../types.ts";
import type { Transport, TransportHandlers } from "./transport.ts";

export class MemoryHub {
  readonly nodes = new Map<NodeId, MemoryTransport>();
  /** Pairs "from->to" whose messages are dropped (a partition). */
  readonly cut = new Set<string>();

  transport(id: NodeId): MemoryTransport {
    return new MemoryTransport(this, id);
  }
}

export class MemoryTransport implements Transport {
  private handlers?: TransportHandlers;
  private readonly peers = new Set<NodeId>();

  constructor(private readonly hub: MemoryHub, readonly id: NodeId) {}

  async start(handlers: TransportHandlers): Promise<void> {
    this.handlers = handlers;
    this.hub.nodes.set(this.id, this);
  }

  setPeer(id: NodeId): void {
    this.peers.add(id);
  }

  removePeer(id: NodeId): void {
    this.peers.delete(id);
  }

  send(messages: readonly Message[]): void {
    for (const m of messages) {
      if (!this.peers.has(m.to)) continue;
      const target = this.hub.nodes.get(m.to);
      if (!target || this.hub.cut.has(`${this.id}->${m.to}`)) {
        if (m.snapshot) setImmediate(() => this.handlers?.snapshotStatus(m.to, false));
        continue;
      }
      setImmediate(() => {
        target.receive([m]);
        if (m.snapshot) this.handlers?.snapshotStatus(m.to, true);
      });
    }
  }

  private receive(messages: Message[]): void {
    this.handlers?.deliver(messages);
  }

  async stop(): Promise<void> {
    this.hub.nodes.delete(this.id);
    this.handlers = undefined;
  }
}
