// The node's NBD server: serves named block exports to local QEMU (and fio) on a unix socket,
// optionally also on a loopback TCP port. Each accepted socket becomes an NbdConnection.
import type { LeasePayload } from "../memory/payload.ts";
import { rm } from "node:fs/promises";
import { createServer } from "node:net";
import type { Server, Socket } from "node:net";
import type { Logger } from "../../core/raft/types.ts";
import type { BlockBackend } from "./backend.ts";
import { StorageError } from "./backend.ts";
import { NbdConnection } from "./connection.ts";
import type { ConnectionLimits, Timers } from "./connection.ts";

export interface NbdLimits {
  inflightMax: number;
  requestBytesMax: number;
  preferredBlockBytes: number;
  outputBytesMax: number;
  optionBytesMax: number;
  optionsMax: number;
  connectionsMax: number;
  handshakeTimeoutMs: number;
  shutdownTimeoutMs: number;
}

export type ExportFactory = () => BlockBackend;

export const nbdDefaults: Readonly<NbdLimits> = {
  inflightMax: 128,
  /** Also the NBD_INFO_BLOCK_SIZE maximum advertised to clients. */
  requestBytesMax: 32 * 1024 * 1024,
  preferredBlockBytes: 4096,
  outputBytesMax: 64 * 1024 * 1024,
  optionBytesMax: 16 * 1024,
  optionsMax: 64,
  connectionsMax: 256,
  handshakeTimeoutMs: 10_000,
  shutdownTimeoutMs: 10_000,
};

export interface NbdServerOptions {
  /** Path of the unix socket (replaced if a stale one exists). */
  socketPath: string;
  /** Also listen on 127.0.0.1:tcpPort (0 picks a free port); for tools without unix sockets. */
  tcpPort?: number;
  log?: Logger;
  timers?: Timers;
  /** Memory for WRITE payloads as they arrive; default the process-wide pools. */
  leasePayload?: LeasePayload;
  limits?: Partial<NbdLimits>;
}

const silentLog: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout),
  setImmediate: (fn) => void setImmediate(fn),
};

export class NbdServer {
  private readonly exports = new Map<string, BlockBackend | ExportFactory>();
  private readonly connections = new Set<NbdConnection>();
  private readonly closing = new Set<Promise<void>>();
  private readonly servers: Server[] = [];
  private readonly limits: NbdLimits;
  private readonly log: Logger;
  private readonly timers: Timers;
  private tcpPortBound: number | null = null;

  constructor(private readonly options: NbdServerOptions) {
    this.limits = { ...nbdDefaults, ...options.limits };
    this.log = options.log ?? silentLog;
    this.timers = options.timers ?? realTimers;
  }

  /**
   * A backend shared by every connection, or a factory asked once per negotiation for a backend
   * of that connection's own (a replicated image fences each connection separately).
   */
  addExport(name: string, backend: BlockBackend | ExportFactory): void {
    if (Buffer.byteLength(name, "utf8") > 4096) throw new StorageError("invalid_argument", `adding NBD export: name is over 4096 bytes`);
    if (this.exports.has(name)) throw new StorageError("invalid_argument", `adding NBD export "${name}": it already exists`);
    this.exports.set(name, backend);
  }

  /** Only stops new connections from opening the export; open ones keep their backend. */
  removeExport(name: string): boolean {
    return this.exports.delete(name);
  }

  get tcpPort(): number | null {
    return this.tcpPortBound;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  async listen(): Promise<void> {
    await rm(this.options.socketPath, { force: true });
    await this.listenOn((s) => s.listen(this.options.socketPath));
    if (this.options.tcpPort !== undefined) {
      const port = this.options.tcpPort;
      const server = await this.listenOn((s) => s.listen(port, "127.0.0.1"));
      const addr = server.address();
      this.tcpPortBound = typeof addr === "object" && addr !== null ? addr.port : null;
    }
  }

  private listenOn(start: (s: Server) => void): Promise<Server> {
    const server = createServer({ noDelay: true }, (socket) => this.accept(socket));
    server.maxConnections = this.limits.connectionsMax;
    this.servers.push(server);
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.once("listening", () => {
        server.off("error", reject);
        resolve(server);
      });
      start(server);
    });
  }

  private accept(socket: Socket): void {
    const limits: ConnectionLimits = {
      handshake: {
        optionBytesMax: this.limits.optionBytesMax,
        optionsMax: this.limits.optionsMax,
        blockSizes: { minimumBytes: 1, preferredBytes: this.limits.preferredBlockBytes, maximumBytes: this.limits.requestBytesMax },
      },
      inflightMax: this.limits.inflightMax,
      requestBytesMax: this.limits.requestBytesMax,
      outputBytesMax: this.limits.outputBytesMax,
      handshakeTimeoutMs: this.limits.handshakeTimeoutMs,
    };
    const table = {
      get: (n: string) => {
        const e = this.exports.get(n);
        return typeof e === "function" ? e() : e;
      },
      names: () => [...this.exports.keys()],
    };
    const conn = new NbdConnection(socket, table, limits, this.log, this.timers, this.options.leasePayload);
    this.connections.add(conn);
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    this.closing.add(closed);
    void closed.then(() => {
      this.connections.delete(conn);
      this.closing.delete(closed);
    });
    void conn.run();
  }

  /**
   * Stops listening, lets every connection finish its in-flight requests, then closes them;
   * connections still open after shutdownTimeoutMs are destroyed.
   */
  async close(): Promise<void> {
    const stopped = this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const c of this.connections) c.shutdown();
    let timer: unknown;
    const timedOut = new Promise<"timeout">((resolve) => (timer = this.timers.setTimeout(() => resolve("timeout"), this.limits.shutdownTimeoutMs)));
    const result = await Promise.race([Promise.all([...this.closing]).then(() => "done" as const), timedOut]);
    this.timers.clearTimeout(timer);
    if (result === "timeout") {
      this.log.warn("nbd connections still open at shutdown; destroying them", { count: this.connections.size });
      for (const c of this.connections) c.destroy();
      await Promise.all([...this.closing]);
    }
    await Promise.all(stopped);
    await rm(this.options.socketPath, { force: true });
  }
}
