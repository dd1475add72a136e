// Test support: a reader of a VM's serial console unix socket (QEMU's chardev server), as lines
// to wait on. Connects with bounded retries, since QEMU creates the socket as it starts.
import { connect } from "node:net";
import type { Socket } from "node:net";

export const serialConnectTimeoutMs = 10_000;
export const serialConnectPollMs = 25;
export const serialLinesMax = 20_000;
const escape = String.fromCharCode(0x1b);
const terminalNoise = new RegExp(`\\r|${escape}\\[[0-9;?]*[A-Za-z]`, "g");

export interface SerialLine {
  text: string;
  /** performance.now() when the line arrived. */
  atMs: number;
}

export class SerialReader {
  readonly lines: SerialLine[] = [];
  private partial = "";
  private readonly waiters = new Set<() => void>();

  private constructor(private readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => this.onData(chunk.toString("utf8")));
    socket.on("error", () => {});
    socket.on("close", () => this.wake());
  }

  static async connect(path: string): Promise<SerialReader> {
    const deadline = performance.now() + serialConnectTimeoutMs;
    for (;;) {
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s = connect(path);
          s.once("connect", () => resolve(s));
          s.once("error", reject);
        });
        return new SerialReader(socket);
      } catch (err) {
        if (performance.now() > deadline) throw new Error(`connecting to the serial console ${path}: ${(err as Error).message} after ${serialConnectTimeoutMs} ms`);
        await new Promise((r) => setTimeout(r, serialConnectPollMs));
      }
    }
  }

  private onData(text: string): void {
    const parts = (this.partial + text).split("\n");
    this.partial = parts.pop() ?? "";
    for (const raw of parts) {
      if (this.lines.length >= serialLinesMax) this.lines.shift();
      this.lines.push({ text: raw.replace(terminalNoise, ""), atMs: performance.now() });
    }
    this.wake();
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Index of the first line at or after `fromLine` matching `pattern`. */
  waitForLine(pattern: RegExp, timeoutMs: number, fromLine = 0): Promise<number> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const at = this.lines.findIndex((l, i) => i >= fromLine && pattern.test(l.text));
        if (at >= 0) finish(() => resolve(at));
        else if (this.socket.destroyed) finish(() => reject(new Error(`serial console closed before a line matching ${pattern}\n${this.tail()}`)));
      };
      const finish = (then: () => void): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
        then();
      };
      const timer = setTimeout(() => finish(() => reject(new Error(`no serial line matching ${pattern} within ${timeoutMs} ms\n${this.tail()}`))), timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  tail(): string {
    return this.lines.slice(-15).map((l) => l.text).join("\n");
  }

  /** Types into the console (the guest's shell reads it as keyboard input). */
  write(text: string): void {
    this.socket.write(text);
  }

  close(): void {
    this.socket.destroy();
  }
}
