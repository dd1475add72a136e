// QMP, layer 1: the wire protocol. Frames a byte stream into JSON lines, classifies each line
// strictly as a greeting, a command reply (return or error) or an event, encodes commands, and
// performs the opening handshake (greeting, then qmp_capabilities). Anything else on the wire is
// a protocol error: a peer that sends it cannot be trusted with a VM.
import { connect as netConnect } from "node:net";
import type { Socket } from "node:net";

/** QEMU's replies are small; query-block on a VM with many disks stays far below this. */
export const qmpLineBytesMax = 1024 * 1024;
/** Quoted in errors about bad lines, so a log line stays readable. */
export const qmpQuoteCharsMax = 120;

export type QmpErrorCode = "connect" | "protocol" | "closed" | "timeout" | "command" | "busy";

/** Every QMP failure; `command` is the QMP command being run, when there was one. */
export class QmpError extends Error {
  constructor(
    readonly code: QmpErrorCode,
    message: string,
    readonly details: { command?: string; errorClass?: string } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "QmpError";
  }
}

export interface QmpGreeting {
  kind: "greeting";
  version: { major: number; minor: number; micro: number };
  capabilities: string[];
}
export interface QmpReturn {
  kind: "return";
  id: string | undefined;
  value: unknown;
}
export interface QmpErrorReply {
  kind: "error";
  id: string | undefined;
  errorClass: string;
  desc: string;
}
export interface QmpEvent {
  kind: "event";
  event: string;
  data: Record<string, unknown>;
  /** QEMU's host clock when the event happened, in microseconds since the epoch. */
  timestampUs: number;
}
export type QmpMessage = QmpGreeting | QmpReturn | QmpErrorReply | QmpEvent;

function quote(line: string): string {
  return JSON.stringify(line.length > qmpQuoteCharsMax ? `${line.slice(0, qmpQuoteCharsMax)}…` : line);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function parseId(v: unknown, line: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw new QmpError("protocol", `QMP reply with a non-string id: ${quote(line)}`);
  return v;
}

function parseGreeting(g: unknown, line: string): QmpGreeting {
  const v = isObject(g) && isObject(g.version) && isObject(g.version.qemu) ? g.version.qemu : undefined;
  const caps = isObject(g) ? g.capabilities : undefined;
  if (!v || ![v.major, v.minor, v.micro].every((n) => typeof n === "number") || !Array.isArray(caps) || !caps.every((c) => typeof c === "string")) {
    throw new QmpError("protocol", `malformed QMP greeting: ${quote(line)}`);
  }
  return { kind: "greeting", version: { major: v.major as number, minor: v.minor as number, micro: v.micro as number }, capabilities: caps as string[] };
}

/** Parses one line (without its newline). Throws QmpError "protocol" on anything that is not QMP. */
export function parseQmpLine(line: string): QmpMessage {
  let msg: unknown;
  try {
    msg = JSON.parse(line);
  } catch {
    throw new QmpError("protocol", `QMP peer sent a line that is not JSON: ${quote(line)}`);
  }
  if (!isObject(msg)) throw new QmpError("protocol", `QMP peer sent JSON that is not an object: ${quote(line)}`);
  if ("QMP" in msg) return parseGreeting(msg.QMP, line);
  if ("return" in msg) return { kind: "return", id: parseId(msg.id, line), value: msg.return };
  if ("error" in msg) {
    const e = msg.error;
    if (!isObject(e) || typeof e.class !== "string" || typeof e.desc !== "string") throw new QmpError("protocol", `malformed QMP error reply: ${quote(line)}`);
    return { kind: "error", id: parseId(msg.id, line), errorClass: e.class, desc: e.desc };
  }
  if ("event" in msg) {
    const ts = msg.timestamp;
    const data = msg.data ?? {};
    if (typeof msg.event !== "string" || !isObject(data) || !isObject(ts) || typeof ts.seconds !== "number" || typeof ts.microseconds !== "number") {
      throw new QmpError("protocol", `malformed QMP event: ${quote(line)}`);
    }
    return { kind: "event", event: msg.event, data, timestampUs: ts.seconds * 1_000_000 + ts.microseconds };
  }
  throw new QmpError("protocol", `QMP peer sent an object that is neither greeting, reply nor event: ${quote(line)}`);
}

/** Splits a byte stream into lines, refusing a line longer than qmpLineBytesMax (pure). */
export class QmpLineDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  /** Returns the complete lines in `chunk`; throws QmpError "protocol" when a line is too long. */
  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, start)) {
      this.append(chunk.subarray(start, nl));
      const line = Buffer.concat(this.pending).toString("utf8").replace(/\r$/, "");
      this.pending = [];
      this.pendingBytes = 0;
      if (line.trim() !== "") lines.push(line);
      start = nl + 1;
    }
    this.append(chunk.subarray(start));
    return lines;
  }

  private append(part: Buffer): void {
    if (part.length === 0) return;
    this.pendingBytes += part.length;
    if (this.pendingBytes > qmpLineBytesMax) throw new QmpError("protocol", `QMP peer sent a line longer than ${qmpLineBytesMax} bytes`);
    this.pending.push(part);
  }
}

export function encodeQmpCommand(execute: string, args: Record<string, unknown> | undefined, id: string): string {
  return `${JSON.stringify(args === undefined ? { execute, id } : { execute, arguments: args, id })}\n`;
}

/** A socket after the handshake: messages out, messages in, one close notification. */
export interface QmpWire {
  readonly greeting: QmpGreeting;
  send(line: string): void;
  /** Set once; called for every message after the handshake, in order. */
  onMessage(handler: (msg: QmpMessage) => void): void;
  /** Called once when the connection ends; `err` is set when it ended because of a protocol error. */
  onClose(handler: (err: QmpError | undefined) => void): void;
  close(): void;
}

/**
 * A QMP connection on a socket. Before the handshake completes, messages drive it (greeting,
 * then the qmp_capabilities reply); after, they go to the message handler.
 */
class SocketWire implements QmpWire {
  private readonly decoder = new QmpLineDecoder();
  private hello: QmpGreeting | undefined;
  private ready = false;
  private ended = false;
  private closeError: QmpError | undefined;
  private messageHandler: ((msg: QmpMessage) => void) | undefined;
  private closeHandler: ((err: QmpError | undefined) => void) | undefined;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly socket: Socket,
    private readonly what: string,
    handshakeTimeoutMs: number,
    private readonly settle: { resolve(w: QmpWire): void; reject(err: QmpError): void },
  ) {
    this.timer = setTimeout(() => this.fail(new QmpError("timeout", `${what}: no QMP greeting and capabilities reply within ${handshakeTimeoutMs} ms`)), handshakeTimeoutMs);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", (err) => {
      this.closeError ??= new QmpError("closed", `${what}: socket error: ${err.message}`, {}, { cause: err });
    });
    socket.on("close", () => this.onSocketClose());
  }

  get greeting(): QmpGreeting {
    return this.hello as QmpGreeting;
  }

  send(line: string): void {
    if (!this.ended) this.socket.write(line);
  }

  onMessage(handler: (msg: QmpMessage) => void): void {
    this.messageHandler = handler;
  }

  onClose(handler: (err: QmpError | undefined) => void): void {
    this.closeHandler = handler;
  }

  close(): void {
    this.socket.end();
  }

  private fail(err: QmpError): void {
    this.closeError ??= err;
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    try {
      for (const line of this.decoder.push(chunk)) {
        const msg = parseQmpLine(line);
        if (this.ready) this.messageHandler?.(msg);
        else this.handshake(msg);
      }
    } catch (err) {
      this.fail(err instanceof QmpError ? err : new QmpError("protocol", `${this.what}: ${(err as Error).message}`, {}, { cause: err }));
    }
  }

  private handshake(msg: QmpMessage): void {
    if (!this.hello) {
      if (msg.kind !== "greeting") throw new QmpError("protocol", `${this.what}: expected the QMP greeting, got a ${msg.kind}`);
      this.hello = msg;
      this.socket.write(encodeQmpCommand("qmp_capabilities", undefined, "capabilities"));
      return;
    }
    if (msg.kind === "event") return; // Events may precede the reply; nobody is subscribed yet.
    if (msg.kind !== "return" || msg.id !== "capabilities") {
      const why = msg.kind === "error" ? `${msg.errorClass}: ${msg.desc}` : `unexpected ${msg.kind}`;
      throw new QmpError("protocol", `${this.what}: qmp_capabilities failed: ${why}`);
    }
    this.ready = true;
    clearTimeout(this.timer);
    this.settle.resolve(this);
  }

  private onSocketClose(): void {
    this.ended = true;
    clearTimeout(this.timer);
    if (!this.ready) this.settle.reject(this.closeError ?? new QmpError("closed", `${this.what}: QMP socket closed during the handshake`));
    else this.closeHandler?.(this.closeError);
  }
}

/** Wraps an already connected stream; resolves after the greeting and capabilities negotiation. */
export function openQmpWire(socket: Socket, what: string, handshakeTimeoutMs: number): Promise<QmpWire> {
  return new Promise((resolve, reject) => {
    new SocketWire(socket, what, handshakeTimeoutMs, { resolve, reject });
  });
}

/** Connects to a QMP unix socket and performs the handshake, all within `timeoutMs`. */
export function connectQmpWire(socketPath: string, timeoutMs: number): Promise<QmpWire> {
  const what = `QMP at ${socketPath}`;
  return new Promise((resolve, reject) => {
    const socket = netConnect(socketPath);
    const onError = (err: Error): void => reject(new QmpError("connect", `connecting to ${what}: ${err.message}`, {}, { cause: err }));
    socket.once("error", onError);
    socket.once("connect", () => {
      socket.off("error", onError);
      openQmpWire(socket, what, timeoutMs).then(resolve, reject);
    });
  });
}
