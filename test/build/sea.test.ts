// Integration test of the single-executable build: the binary from `npm run build`, copied alone
// into an empty directory with no node_modules in reach, prints its version and passes its
// self-test (SQLite and pty through the embedded native addons), and extracts those addons into
// its cache only once.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const distBinary = join(root, "dist", "trivet");
const BUILD_TIMEOUT_MS = 240_000;
const RUN_TIMEOUT_MS = 30_000;
const CONCURRENT_STARTS = 4;
const SOURCE_DIRS = ["cmd", "core", "storage", "ui"];
const SOURCE_FILES = ["package.json", "package-lock.json"];

function newestMtimeMs(path: string): number {
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st) return 0;
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const entry of readdirSync(path)) {
    if (entry === "node_modules" || entry === "dist") continue;
    newest = Math.max(newest, newestMtimeMs(join(path, entry)));
  }
  return newest;
}

/** Builds dist/trivet unless it is newer than every source file that goes into it. */
function ensureBinary(): void {
  const sources = Math.max(...[...SOURCE_DIRS, ...SOURCE_FILES].map((p) => newestMtimeMs(join(root, p))));
  const built = statSync(distBinary, { throwIfNoEntry: false });
  if (built && built.mtimeMs > sources) return;
  execFileSync("npm", ["run", "build"], { cwd: root, stdio: "pipe", timeout: BUILD_TIMEOUT_MS });
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

describe("dist/trivet single executable", () => {
  let work: string;
  let binDir: string;
  let home: string;
  let version: string;

  // Only PATH survives: no NODE_PATH, no NODE_OPTIONS from the test runner, a fresh HOME.
  function run(args: string[], env: Record<string, string> = {}): Run {
    const r = spawnSync("./trivet", args, {
      cwd: binDir,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home, ...env },
      encoding: "utf8",
      timeout: RUN_TIMEOUT_MS,
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  function cacheFiles(cacheRoot: string): Map<string, { mtimeMs: number; ino: number }> {
    const files = new Map<string, { mtimeMs: number; ino: number }>();
    for (const key of readdirSync(cacheRoot)) {
      for (const name of readdirSync(join(cacheRoot, key))) {
        const st = statSync(join(cacheRoot, key, name));
        files.set(`${key}/${name}`, { mtimeMs: st.mtimeMs, ino: st.ino });
      }
    }
    return files;
  }

  beforeAll(() => {
    ensureBinary();
    version = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }).version;
    work = mkdtempSync(join(tmpdir(), "trivet-sea-test-"));
    binDir = join(work, "bin");
    home = join(work, "home");
    mkdirSync(binDir);
    mkdirSync(home);
    copyFileSync(distBinary, join(binDir, "trivet"));
  });

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("prints the version, commit and build time defined at build time", () => {
    const r = run(["version"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const m = /^trivet (\S+) \(commit (\S+), built (\S+), node (v\d+\.\d+\.\d+)\)\n$/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect(m?.[1]).toBe(version);
    expect(m?.[2]).toMatch(/^([0-9a-f]{4,40}|unknown)$/);
    expect(Number.isNaN(Date.parse(m?.[3] ?? ""))).toBe(false);
    expect(m?.[4]).toBe(process.version);
  });

  it("keeps selftest out of help", () => {
    const r = run(["help"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("version");
    expect(r.stdout).not.toContain("selftest");
  });

  it("passes its self-test, extracting the native addons into ~/.cache/trivet once", () => {
    const first = run(["selftest"]);
    expect(first.stderr).toBe("");
    expect(first.status).toBe(0);
    expect(first.stdout).toMatch(/^sqlite: ok .*WAL/m);
    expect(first.stdout).toMatch(/^pty: ok /m);
    expect(first.stdout).toMatch(/^selftest: ok$/m);

    const cacheRoot = join(home, ".cache", "trivet");
    const before = cacheFiles(cacheRoot);
    expect([...before.keys()].map((k) => k.replace(/^[^/]+\//, "")).sort()).toEqual(["better_sqlite3.node", "pty.node"]);
    expect([...before.keys()][0]?.startsWith(`${version}-`)).toBe(true);

    const second = run(["selftest"]);
    expect(second.status).toBe(0);
    expect(second.stdout).toMatch(/^selftest: ok$/m);
    expect(cacheFiles(cacheRoot)).toEqual(before);
  });

  it("replaces a damaged cached addon instead of loading it", () => {
    const cacheRoot = join(home, ".cache", "trivet");
    const [key] = readdirSync(cacheRoot);
    const addon = join(cacheRoot, key ?? "", "better_sqlite3.node");
    const size = statSync(addon).size;
    truncateSync(addon, 100);
    const r = run(["selftest"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(statSync(addon).size).toBe(size);
  });

  it("survives concurrent first starts, leaving no temporary files", async () => {
    const xdg = join(work, "xdg-concurrent");
    const starts = Array.from({ length: CONCURRENT_STARTS }, () => new Promise<number | null>((resolveRun, reject) => {
      const child = spawn("./trivet", ["selftest"], { cwd: binDir, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home, XDG_CACHE_HOME: xdg }, stdio: "ignore", timeout: RUN_TIMEOUT_MS });
      child.on("error", reject);
      child.on("exit", (code) => resolveRun(code));
    }));
    expect(await Promise.all(starts)).toEqual(Array.from({ length: CONCURRENT_STARTS }, () => 0));
    const files = [...cacheFiles(join(xdg, "trivet")).keys()].map((k) => k.replace(/^[^/]+\//, "")).sort();
    expect(files).toEqual(["better_sqlite3.node", "pty.node"]);
  });

  it("uses XDG_CACHE_HOME when it is set", () => {
    const xdg = join(work, "xdg");
    const r = run(["selftest"], { XDG_CACHE_HOME: xdg });
    expect(r.status).toBe(0);
    const files = [...cacheFiles(join(xdg, "trivet")).keys()].map((k) => k.replace(/^[^/]+\//, "")).sort();
    expect(files).toEqual(["better_sqlite3.node", "pty.node"]);
  });
});
