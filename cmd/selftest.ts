// `trivet selftest` (hidden): proves that the native parts of this build work — SQLite in WAL
// mode through better-sqlite3, and a pseudo-terminal through node-pty. The build's integration
// test runs it from the single executable, far from any node_modules.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Command } from "./commands.ts";

const PTY_TIMEOUT_MS = 10_000;
const ECHO_PATH = "/bin/echo";

export class SelftestError extends Error {
  readonly code = "selftest_failed";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "SelftestError";
  }
}

async function checkSqlite(dir: string, nonce: string): Promise<string> {
  // Imported lazily so that commands that need no database never load the addon.
  const { openDatabase } = await import("../core/sqlite.ts");
  const path = join(dir, "selftest.db");
  const db = openDatabase(path);
  try {
    const mode = db.pragma("journal_mode", { simple: true });
    if (mode !== "wal") throw new SelftestError(`sqlite: ${path} is in journal mode ${String(mode)}, wanted wal`);
    db.exec("CREATE TABLE probe (id INTEGER PRIMARY KEY, value TEXT NOT NULL)");
    db.prepare("INSERT INTO probe (value) VALUES (?)").run(nonce);
    const row = db.prepare("SELECT value FROM probe").get() as { value: string } | undefined;
    if (row?.value !== nonce) throw new SelftestError(`sqlite: wrote ${nonce} to ${path} but read back ${JSON.stringify(row)}`);
    const version = db.prepare("SELECT sqlite_version() AS v").get() as { v: string };
    return `sqlite: ok (SQLite ${version.v}, WAL, ${path})`;
  } finally {
    db.close();
  }
}

async function checkPty(nonce: string): Promise<string> {
  const pty = await import("node-pty");
  const term = pty.spawn(ECHO_PATH, [nonce], { name: "xterm", cols: 80, rows: 24, cwd: tmpdir(), env: { PATH: "/usr/bin:/bin" } });
  let output = "";
  term.onData((data) => { output += data; });
  const exitCode = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      term.kill();
      reject(new SelftestError(`pty: ${ECHO_PATH} did not exit within ${PTY_TIMEOUT_MS} ms (output so far: ${JSON.stringify(output)})`));
    }, PTY_TIMEOUT_MS);
    term.onExit((e) => { clearTimeout(timer); resolve(e.exitCode); });
  });
  if (exitCode !== 0) throw new SelftestError(`pty: ${ECHO_PATH} exited with code ${exitCode}`);
  if (!output.includes(nonce)) throw new SelftestError(`pty: expected ${JSON.stringify(nonce)} from ${ECHO_PATH}, got ${JSON.stringify(output)}`);
  return `pty: ok (${ECHO_PATH} through a pseudo-terminal, pid ${term.pid})`;
}

export const selftestCommand: Command = {
  path: ["selftest"],
  summary: "check that this build's native parts (SQLite, pty) work",
  hidden: true,
  async run(ctx) {
    const nonce = `trivet-selftest-${randomBytes(8).toString("hex")}`;
    const dir = mkdtempSync(join(tmpdir(), "trivet-selftest-"));
    try {
      ctx.stdout.write(`${await checkSqlite(dir, nonce)}\n`);
      ctx.stdout.write(`${await checkPty(nonce)}\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    ctx.stdout.write("selftest: ok\n");
    return 0;
  },
};
