// Test support: a fake QMP server on a unix socket that speaks the protocol as QEMU 7.2 does
// (greeting, qmp_capabilities, replies with the caller's id, events), so the QMP layers are
// tested without QEMU. Each command's answer is scripted by the test, including misbehaviour:
// no answer, a closed socket, or raw garbage.
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import type { Server, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export type FakeAnswer =
  | { return: unknown }
  | { error: { class: string; desc: string } }
  /** Never answer (to test timeouts). */
  | "ignore"
  /** Close the connection instead of answering. */
  | "close"
  /** Send this raw text (no newline added) instead of a reply. */
  | { raw: string };

export type FakeHandler = (command: string, args: Record<string, unknown> | undefined) => FakeAnswer;

export const fakeGreeting = { QMP: { version: { qemu: { micro: 22, minor: 2, major: 7 }, package: "fake" }, capabilities: ["oob"] } };

export class FakeQmpServer {
  /** Every command received after the handshake, in order. */
  readonly received: { command: string; args: Record<string, unknown> | undefined }[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    private readonly dir: string,
    readonly socketPath: string,
    public handler: FakeHandler,
  ) {}

  static async start(handler: FakeHandler = () => ({ return: {} }), greeting: string = JSON.stringify(fakeGreeting)): Promise<FakeQmpServer> {
    const dir = await mkdtemp(join(tmpdir(), "trivet-fakeqmp-"));
    const socketPath = join(dir, "qmp.sock");
    const server = createServer();
    const fake = new FakeQmpServer(server, dir, socketPath, handler);
    server.on("connection", (s) => fake.accept(s, greeting));
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    return fake;
  }

  private accept(socket: Socket, greeting: string): void {
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
    socket.on("error", () => {});
    socket.write(`${greeting}\n`);
    let buffered = "";
    socket.on("data", (chunk: Buffer) => {
      buffered += chunk.toString("utf8");
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        this.answer(socket, JSON.parse(line) as { execute: string; arguments?: Record<string, unknown>; id?: string });
      }
    });
  }

  private answer(socket: Socket, msg: { execute: string; arguments?: Record<string, unknown>; id?: string }): void {
    if (msg.execute === "qmp_capabilities") {
      socket.write(`${JSON.stringify({ return: {}, id: msg.id })}\n`);
      return;
    }
    this.received.push({ command: msg.execute, args: msg.arguments });
    const a = this.handler(msg.execute, msg.arguments);
    if (a === "ignore") return;
    if (a === "close") socket.destroy();
    else if ("raw" in a) socket.write(a.raw);
    else socket.write(`${JSON.stringify({ ...a, id: msg.id })}\n`);
  }

  /** Sends an event to every connected client. */
  emit(event: string, data?: Record<string, unknown>): void {
    const line = `${JSON.stringify({ event, data, timestamp: { seconds: 1764496000, microseconds: 123456 } })}\n`;
    for (const s of this.sockets) s.write(line);
  }

  /** Writes raw text to every connected client (a late reply, a malformed message). */
  sendRaw(text: string): void {
    for (const s of this.sockets) s.write(text);
  }

  get connections(): number {
    return this.sockets.size;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await rm(this.dir, { recursive: true, force: true });
  }
}
