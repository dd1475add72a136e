// In-process transport: a hub that hands message batches between RaftHosts in one process,
// asynchronously (next event-loop turn) like a network would. Used by driver tests; passes the
// same contract as the gRPC transport. Tests can cut links ("from->to", one way) and, through
// an injected LinkFaults, delay or lose single messages; order per link is kept either way, as
// over one gRPC stream.
import type { Message, NodeId } from "../types.ts";
import type { Transport, TransportHandlers } from "./transport.ts";

/** Per-message faults on a link, decided by the test (e.g. from a seeded random source). */
export interface LinkFaults {
  /** Extra time message `m` spends in flight, in ms (0 = next turn). */
  delayMs(from: NodeId, to: NodeId, m: Message): number;
  /** Whether message `m` is lost. */
  drop(from: NodeId, to: NodeId, m: Message): boolean;
}

export class MemoryHub {
  readonly nodes = new Map<NodeId, MemoryTransport>();
  /** Pairs "from->to" whose messages are dropped (a partition). */
  readonly cut = new Set<string>();
  /** Delays and losses; none when unset. */
  links?: LinkFaults;

  transport(id: NodeId): MemoryTransport {
    return new MemoryTransport(this, id);
  }
}

/** Messages in flight to one peer, due in order. */
interface Link {
  queue: Array<{ dueMs: number; m: Message }>;
  timer?: NodeJS.Timeout;
}

export class MemoryTransport implements Transport {
  private handlers?: TransportHandlers;
  private readonly peers = new Set<NodeId>();
  private readonly links = new Map<NodeId, Link>();

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
      if (!target || this.hub.cut.has(`${this.id}->${m.to}`) || this.hub.links?.drop(this.id, m.to, m)) {
        if (m.snapshot) setImmediate(() => this.handlers?.snapshotStatus(m.to, false));
        continue;
      }
      const delayMs = this.hub.links?.delayMs(this.id, m.to, m) ?? 0;
      if (delayMs <= 0 && !this.links.get(m.to)?.timer) {
        setImmediate(() => this.deliver(target, m));
        continue;
      }
      this.enqueue(m, delayMs);
    }
  }

  private deliver(target: MemoryTransport, m: Message): void {
    target.receive([m]);
    if (m.snapshot) this.handlers?.snapshotStatus(m.to, true);
  }

  /** A delayed message never overtakes an earlier one on the same link. */
  private enqueue(m: Message, delayMs: number): void {
    let link = this.links.get(m.to);
    if (!link) {
      link = { queue: [] };
      this.links.set(m.to, link);
    }
    const last = link.queue[link.queue.length - 1];
    link.queue.push({ dueMs: Math.max(Date.now() + delayMs, last?.dueMs ?? 0), m });
    if (!link.timer) this.arm(m.to, link);
  }

  private arm(to: NodeId, link: Link): void {
    const first = link.queue[0];
    if (!first) {
      link.timer = undefined;
      return;
    }
    link.timer = setTimeout(() => {
      const now = Date.now();
      while (link.queue.length > 0 && link.queue[0]!.dueMs <= now) {
        const { m } = link.queue.shift()!;
        // The peer as it is now: a message in flight across a restart reaches the new process.
        const target = this.hub.nodes.get(to);
        if (target) this.deliver(target, m);
      }
      this.arm(to, link);
    }, Math.max(0, first.dueMs - Date.now()));
  }

  private receive(messages: Message[]): void {
    this.handlers?.deliver(messages);
  }

  async stop(): Promise<void> {
    if (this.hub.nodes.get(this.id) === this) this.hub.nodes.delete(this.id);
    this.handlers = undefined;
    for (const link of this.links.values()) clearTimeout(link.timer);
    this.links.clear();
  }
}
