// A login shell on this node for administrators, through node-pty, as a ByteBackend for the
// WebSocket bridge: `/bin/bash -l` when bash exists, else `/bin/sh -l`. Raw bytes both ways
// (encoding null), resize from the client's control messages, the shell's exit ends the console.
import fs from "node:fs";
import os from "node:os";
import type { ByteBackend } from "./bridge.ts";

export interface ShellOptions {
  cols?: number;
  rows?: number;
  /** Overrides the login shell (tests). */
  shell?: string;
}

function loginShell(): string {
  return fs.existsSync("/bin/bash") ? "/bin/bash" : "/bin/sh";
}

/** Spawns the shell; node-pty is imported lazily so that loading the API never needs the addon. */
export async function shellBackend(opts: ShellOptions = {}): Promise<ByteBackend> {
  const pty = await import("node-pty");
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  env.TERM = "xterm-256color";
  const term = pty.spawn(opts.shell ?? loginShell(), ["-l"], {
    name: "xterm-256color", cols: opts.cols ?? 80, rows: opts.rows ?? 24, cwd: os.homedir(), env, encoding: null,
  });
  let exited = false;
  return {
    // node-pty buffers writes itself and offers no drain signal; keystrokes are small.
    write: (d) => (term.write(d), true),
    onData: (fn) => term.onData((d: string | Buffer) => fn(typeof d === "string" ? Buffer.from(d, "utf8") : d)),
    onDrain: () => {},
    onClose: (fn) => term.onExit(({ exitCode, signal }) => {
      exited = true;
      fn(exitCode === 0 || signal === 1 ? undefined : `shell exited with ${signal ? `signal ${signal}` : `code ${exitCode}`}`);
    }),
    pause: () => term.pause(),
    resume: () => term.resume(),
    resize: (cols, rows) => !exited && term.resize(cols, rows),
    close: () => {
      if (!exited) term.kill("SIGHUP");
    },
  };
}
