// Joins a WebSocket to a byte stream — a VM's serial or VNC unix socket, or a pty — both ways,
// with bounded buffers: when the browser reads slower than the guest writes, the source is
// paused until the WebSocket's queue drains below half; when the guest reads slower than the
// browser types, the WebSocket is paused until the backend drains. Binary frames carry bytes;
// a text frame is a JSON control message (only `{"type":"resize","cols":N,"rows":N}`). An idle
// timeout closes consoles nobody uses. Close codes say why the console ended.
import net from "node:net";
import type { WebSocket } from "ws";
import { ApiError } from "../server/errors.ts";

/** Close codes sent to the client (1000–1015 standard, 4000–4999 ours). */
export const closeCodes = {
  normal: 1000,
  goingAway: 1001,
  unsupportedData: 1003,
  tooBig: 1009,
  backendFailed: 1011,
  idle: 4008,
} as const;

export interface BridgeLimits {
  /** Bytes queued towards the client before the source is paused. */
  maxBufferedBytes: number;
  /** No bytes either way for this long closes the console. */
  idleTimeoutMs: number;
}

export const bridgeLimitsDefault: BridgeLimits = { maxBufferedBytes: 1024 * 1024, idleTimeoutMs: 30 * 60_000 };

/** The byte stream side of a console. */
export interface ByteBackend {
  /** Returns false when the backend's buffer is full (then `onDrain` fires later). */
  write(data: Buffer): boolean;
  onData(fn: (data: Buffer) => void): void;
  onDrain(fn: () => void): void;
  /** `reason` is set when the backend failed rather than ended. */
  onClose(fn: (reason?: string) => void): void;
  pause(): void;
  resume(): void;
  resize?(cols: number, rows: number): void;
  close(): void;
  /** Ends after what was written has been delivered (a client's half-close); close() when absent. */
  end?(): void;
}

type Control = { type: "resize"; cols: number; rows: number };

export function parseControl(text: string): Control | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  const o = v as Partial<Control> | null;
  const dim = (n: unknown) => typeof n === "number" && Number.isInteger(n) && n >= 1 && n <= 10_000;
  return o && o.type === "resize" && dim(o.cols) && dim(o.rows) ? { type: "resize", cols: o.cols!, rows: o.rows! } : undefined;
}

/** Runs the console until either side ends; closes the other side with a code and reason. */
export function bridge(ws: WebSocket, backend: ByteBackend, limits: BridgeLimits = bridgeLimitsDefault): void {
  let queuedBytes = 0;
  let sourcePaused = false;
  let done = false;
  let idleTimer: NodeJS.Timeout | undefined;
  const finish = (code: number, reason: string) => {
    if (done) return;
    done = true;
    clearTimeout(idleTimer);
    backend.close();
    if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, reason.slice(0, 120));
  };
  const touch = () => {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => finish(closeCodes.idle, `idle for ${Math.round(limits.idleTimeoutMs / 1000)} s`), limits.idleTimeoutMs);
  };
  touch();
  backend.onData((data) => {
    touch();
    queuedBytes += data.length;
    ws.send(data, { binary: true }, () => {
      queuedBytes -= data.length;
      if (sourcePaused && queuedBytes <= limits.maxBufferedBytes / 2) {
        sourcePaused = false;
        backend.resume();
      }
    });
    if (!sourcePaused && queuedBytes > limits.maxBufferedBytes) {
      sourcePaused = true;
      backend.pause();
    }
  });
  backend.onDrain(() => ws.resume());
  backend.onClose((reason) => finish(reason ? closeCodes.backendFailed : closeCodes.normal, reason ?? "console closed"));
  ws.on("message", (data, isBinary) => {
    touch();
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    if (!isBinary) {
      const ctl = parseControl(buf.toString("utf8"));
      if (!ctl) return finish(closeCodes.unsupportedData, 'text frames must be {"type":"resize","cols":N,"rows":N}');
      backend.resize?.(ctl.cols, ctl.rows);
      return;
    }
    if (!backend.write(buf)) ws.pause();
  });
  ws.on("close", () => finish(closeCodes.normal, "client closed"));
  ws.on("error", () => finish(closeCodes.backendFailed, "websocket error"));
  if (ws.readyState !== ws.OPEN) finish(closeCodes.normal, "client closed");
}

/** A unix socket (QEMU chardev server=on,wait=off) as a ByteBackend. */
export function unixSocketBackend(socketPath: string): ByteBackend {
  return socketBackend(net.connect(socketPath), socketPath);
}

/** Connects to the unix socket first, so that a console that cannot be reached fails before it opens. */
export function connectUnixSocket(socketPath: string, what: string): Promise<ByteBackend> {
  const sock = net.connect(socketPath);
  return new Promise((resolve, reject) => {
    sock.once("connect", () => resolve(socketBackend(sock, socketPath)));
    sock.once("error", (err) => reject(new ApiError("unavailable", `${what}: ${err.message}`, { reason: "console_socket", cause: err })));
  });
}

function socketBackend(sock: net.Socket, socketPath: string): ByteBackend {
  let closeFn: (reason?: string) => void = () => {};
  let failure: string | undefined;
  sock.on("error", (err) => (failure = `console socket ${socketPath}: ${err.message}`));
  sock.on("close", () => closeFn(failure));
  return {
    write: (d) => sock.write(d),
    onData: (fn) => sock.on("data", fn),
    onDrain: (fn) => sock.on("drain", fn),
    onClose: (fn) => (closeFn = fn),
    pause: () => sock.pause(),
    resume: () => sock.resume(),
    close: () => sock.destroy(),
    end: () => sock.end(),
  };
}

/** Proxies a WebSocket to the unix socket at `socketPath` (a serial console, a VNC display). */
export function attachUnixSocket(ws: WebSocket, socketPath: string, limits?: BridgeLimits): void {
  bridge(ws, unixSocketBackend(socketPath), limits);
}
