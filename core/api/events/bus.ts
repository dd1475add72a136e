// The node's event bus: what EventService.Watch streams. Events get increasing ids on this node
// and are kept in a bounded ring, so a client that reconnects can resume after the last id it
// saw while the node still holds it. Subscribers have bounded queues: one that cannot keep up
// is cut off (its stream ends with an error) rather than growing memory without limit.
export interface BusEvent {
  id: number;
  timeMs: number;
  /** "audit", "node.health", "cluster.leader", "vm.state", "vm.error", "storage.image", "storage.replica", "storage.heal"; later "task.progress", "alert". */
  kind: string;
  /** "node/n2", "user/alice", "vm/web1". */
  object: string;
  message: string;
  fields: Record<string, string>;
}

export interface EventFilter {
  kinds: readonly string[];
  objectPrefix: string;
}

export const ringEventsMax = 10_000;
export const subscriberQueueMax = 1_000;

export class SubscriberTooSlowError extends Error {
  readonly code = "resource_exhausted";
  constructor() {
    super(`event stream: the client fell more than ${subscriberQueueMax} events behind and was cut off; reconnect with after_id to resume`);
    this.name = "SubscriberTooSlowError";
  }
}

function matches(e: BusEvent, f: EventFilter): boolean {
  return (f.kinds.length === 0 || f.kinds.includes(e.kind)) && e.object.startsWith(f.objectPrefix);
}

interface Subscriber {
  filter: EventFilter;
  queue: BusEvent[];
  wake?: () => void;
  failed?: Error;
}

export class EventBus {
  private readonly ring: BusEvent[] = [];
  private nextId = 1;
  private readonly subscribers = new Set<Subscriber>();

  constructor(private readonly nowMs: () => number = Date.now) {}

  publish(e: Omit<BusEvent, "id" | "timeMs"> & { timeMs?: number }): BusEvent {
    const event: BusEvent = { id: this.nextId++, timeMs: e.timeMs ?? this.nowMs(), kind: e.kind, object: e.object, message: e.message, fields: e.fields };
    this.ring.push(event);
    if (this.ring.length > ringEventsMax) this.ring.splice(0, this.ring.length - ringEventsMax);
    for (const s of this.subscribers) {
      if (!matches(event, s.filter) || s.failed) continue;
      if (s.queue.length >= subscriberQueueMax) s.failed = new SubscriberTooSlowError();
      else s.queue.push(event);
      s.wake?.();
    }
    return event;
  }

  /** Events after `afterId` still held (oldest first), then live ones, until the signal aborts. */
  async *watch(filter: EventFilter, afterId: number, signal: AbortSignal): AsyncGenerator<BusEvent> {
    const sub: Subscriber = { filter, queue: afterId > 0 ? this.ring.filter((e) => e.id > afterId && matches(e, filter)) : [] };
    this.subscribers.add(sub);
    const onAbort = () => sub.wake?.();
    signal.addEventListener("abort", onAbort);
    try {
      while (!signal.aborted) {
        if (sub.failed) throw sub.failed;
        const next = sub.queue.shift();
        if (next) {
          yield next;
          continue;
        }
        await new Promise<void>((resolve) => (sub.wake = resolve));
        sub.wake = undefined;
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      this.subscribers.delete(sub);
    }
  }
}
