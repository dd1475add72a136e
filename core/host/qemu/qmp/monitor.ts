// QMP, layer 2: the monitor. One connection: commands matched to replies by id, each with its
// own timeout, events fanned out to subscribers, and — when the socket closes — every pending
// command rejected with an error naming it. Reconnecting is the caller's decision (the runtime
// re-attaches; a test may not want to).
import { QmpError, connectQmpWire, encodeQmpCommand } from "./wire.ts";
import type { QmpEvent, QmpGreeting, QmpMessage, QmpWire } from "./wire.ts";

export { QmpError } from "./wire.ts";
export type { QmpEvent } from "./wire.ts";

/** A QEMU that is busy (migration, a stuck disk) queues commands; beyond this we stop asking. */
export const qmpPendingCommandsMax = 64;
export const qmpHandshakeTimeoutMs = 3000;

/** Timers come in from outside so tests can drive time (STYLE.md: no setTimeout in cores). */
export interface QmpTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}
const realTimers: QmpTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** What typed commands need: run one command with its timeout. */
export interface QmpExecutor {
  execute(command: string, args: Record<string, unknown> | undefined, timeoutMs: number): Promise<unknown>;
}

interface Pending {
  command: string;
  timer: unknown;
  resolve(value: unknown): void;
  reject(err: QmpError): void;
}

type EventListener = (event: QmpEvent) => void;

export interface QmpMonitorOptions {
  /** Names the VM or socket in every error ("QMP of web1"). */
  name: string;
  timers?: QmpTimers;
}

export class QmpMonitor implements QmpExecutor {
  private readonly timers: QmpTimers;
  private readonly pending = new Map<string, Pending>();
  private readonly listeners = new Set<{ events: Set<string> | null; fn: EventListener }>();
  private readonly closeListeners = new Set<(err: QmpError) => void>();
  private nextId = 1;
  private closedWith: QmpError | undefined;

  constructor(
    private readonly wire: QmpWire,
    private readonly options: QmpMonitorOptions,
  ) {
    this.timers = options.timers ?? realTimers;
    wire.onMessage((msg) => this.handleMessage(msg));
    wire.onClose((err) => this.handleClose(err));
  }

  /** Connects to a QMP socket and completes the handshake within connectTimeoutMs. */
  static async connect(socketPath: string, options: QmpMonitorOptions & { connectTimeoutMs?: number }): Promise<QmpMonitor> {
    const wire = await connectQmpWire(socketPath, options.connectTimeoutMs ?? qmpHandshakeTimeoutMs);
    return new QmpMonitor(wire, options);
  }

  get greeting(): QmpGreeting {
    return this.wire.greeting;
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  execute(command: string, args: Record<string, unknown> | undefined, timeoutMs: number): Promise<unknown> {
    const what = `${this.options.name}: ${command}`;
    if (this.closedWith) return Promise.reject(new QmpError("closed", `${what}: the QMP connection is closed (${this.closedWith.message})`, { command }));
    if (this.pending.size >= qmpPendingCommandsMax) {
      return Promise.reject(new QmpError("busy", `${what}: ${qmpPendingCommandsMax} commands already wait for QEMU; it is not answering`, { command }));
    }
    const id = `c${this.nextId++}`;
    return new Promise((resolve, reject) => {
      const timer = this.timers.setTimeout(() => {
        // A late reply to this id is dropped by handleMessage: nobody waits for it any more.
        this.pending.delete(id);
        reject(new QmpError("timeout", `${what}: no reply within ${timeoutMs} ms`, { command }));
      }, timeoutMs);
      this.pending.set(id, { command, timer, resolve, reject });
      this.wire.send(encodeQmpCommand(command, args, id));
    });
  }

  /** Subscribes to the named events (all when `events` is omitted); returns the unsubscribe function. */
  subscribe(fn: EventListener, events?: readonly string[]): () => void {
    const entry = { events: events ? new Set(events) : null, fn };
    this.listeners.add(entry);
    return () => this.listeners.delete(entry);
  }

  /** Called once when the connection ends, for whatever reason; at once if it already has. */
  onClose(fn: (err: QmpError) => void): () => void {
    if (this.closedWith) {
      fn(this.closedWith);
      return () => {};
    }
    this.closeListeners.add(fn);
    return () => this.closeListeners.delete(fn);
  }

  close(): void {
    this.wire.close();
  }

  private handleMessage(msg: QmpMessage): void {
    if (msg.kind === "event") {
      for (const l of [...this.listeners]) if (!l.events || l.events.has(msg.event)) l.fn(msg);
      return;
    }
    if (msg.kind === "greeting") {
      this.wire.close();
      return;
    }
    const p = msg.id === undefined ? undefined : this.pending.get(msg.id);
    if (!p || msg.id === undefined) return; // The reply to a command that already timed out.
    this.pending.delete(msg.id);
    this.timers.clearTimeout(p.timer);
    if (msg.kind === "return") p.resolve(msg.value);
    else p.reject(new QmpError("command", `${this.options.name}: ${p.command} failed: ${msg.errorClass}: ${msg.desc}`, { command: p.command, errorClass: msg.errorClass }));
  }

  private handleClose(err: QmpError | undefined): void {
    const why = err ? err.message : "QEMU closed the QMP socket";
    this.closedWith = new QmpError(err?.code === "protocol" ? "protocol" : "closed", `${this.options.name}: ${why}`, {}, { cause: err });
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      this.timers.clearTimeout(p.timer);
      p.reject(new QmpError("closed", `${this.options.name}: ${p.command} was pending when the QMP connection closed: ${why}`, { command: p.command }, { cause: err }));
    }
    for (const fn of [...this.closeListeners]) fn(this.closedWith);
    this.closeListeners.clear();
  }
}
