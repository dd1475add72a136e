// A throwaway GlusterFS 10 replica-3 volume on this one machine, the peer of the storage
// benchmark: glusterd run in the foreground with its own working directory (so the host's
// /var/lib/glusterd state is not used), three bricks on loopback addresses 127.0.0.21-23 (one
// host, hence `force`), the `virt` option group as for VM images. stop() deletes the volume,
// stops the daemons and removes whatever glusterd and its CLI added under the system paths
// below, so the machine is left as it was found. With `tls`, the volume's I/O path (client to
// bricks, and the self-heal daemon) runs over TLS (client.ssl, server.ssl) with a throwaway
// self-signed certificate, the like-for-like peer of Trivet's mutually authenticated channels;
// glusterd's management connection stays plain, as it does without secure-access.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import { connect } from "node:net";
import path from "node:path";

const glusterdPort = 24007;
const cliTimeoutMs = 60_000;
const readyTimeoutMs = 60_000;
const pollMs = 250;
const exitWaitMs = 15_000;
const packagedState = "/var/lib/glusterd";
/** What glusterd, its bricks and its CLI write outside their working directory. */
const systemPaths = ["/var/lib/glusterd", "/var/run/gluster", "/var/log/glusterfs", "/var/run/glusterd.socket"];

export interface GlusterOptions {
  dir: string;
  volume: string;
  brickHosts: readonly string[];
  /** Encrypt and authenticate the I/O path with TLS. */
  tls?: boolean;
}

export interface GlusterVolume {
  volume: string;
  host: string;
  /** Options of the virt group that could not be set here, with glusterd's reason. */
  droppedOptions: { option: string; reason: string }[];
  stop(): Promise<void>;
}

export class GlusterError extends Error {
  constructor(readonly code: "gluster_busy" | "gluster_cli" | "gluster_timeout", message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "GlusterError";
  }
}

/** Runs a command to its end; its exit code (-1 when it could not run or timed out) and output. */
function exec(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: cliTimeoutMs }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === "number" ? err.code : -1;
      resolve({ code, out: `${stdout}${stderr}`.trim() });
    });
  });
}

/** Like exec, but a non-zero exit is a GlusterError naming the command and its output. */
async function execOk(cmd: string, args: string[]): Promise<string> {
  const r = await exec(cmd, args);
  if (r.code !== 0) throw new GlusterError("gluster_cli", `${cmd} ${args.join(" ")} (exit ${r.code}): ${r.out}`);
  return r.out;
}

function gluster(args: string[]): Promise<{ code: number; out: string }> {
  return exec("gluster", ["--mode=script", ...args]);
}

function glusterOk(args: string[]): Promise<string> {
  return execOk("gluster", ["--mode=script", ...args]);
}

function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => (s.destroy(), resolve(true)));
    s.once("error", () => resolve(false));
  });
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + readyTimeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new GlusterError("gluster_timeout", `waiting for ${what}: not done after ${readyTimeoutMs} ms`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

function listTree(root: string, into: Set<string>): void {
  if (!fs.existsSync(root)) return;
  into.add(root);
  if (!fs.lstatSync(root).isDirectory()) return;
  for (const e of fs.readdirSync(root)) listTree(path.join(root, e), into);
}

function snapshot(): Set<string> {
  const s = new Set<string>();
  for (const p of systemPaths) listTree(p, s);
  return s;
}

/** Removes every path under systemPaths that was not in `before` (parents before children). */
function removeAdded(before: Set<string>): void {
  const added = [...snapshot()].filter((p) => !before.has(p)).sort((a, b) => a.length - b.length);
  for (const p of added) fs.rmSync(p, { recursive: true, force: true });
}

function startGlusterd(dir: string): ChildProcess {
  const wd = path.join(dir, "wd");
  fs.mkdirSync(wd, { recursive: true });
  // The option groups (virt) and hooks that the package installs are read from the working directory.
  for (const sub of ["groups", "hooks"]) fs.cpSync(path.join(packagedState, sub), path.join(wd, sub), { recursive: true });
  const vol = fs.readFileSync("/etc/glusterfs/glusterd.vol", "utf8").replace(/option working-directory \S+/, `option working-directory ${wd}`);
  fs.writeFileSync(path.join(dir, "glusterd.vol"), vol);
  const log = fs.openSync(path.join(dir, "glusterd.out"), "a");
  const child = spawn("glusterd", ["-N", "-f", path.join(dir, "glusterd.vol"), "-l", path.join(dir, "glusterd.log"), "-p", path.join(dir, "glusterd.pid")], { stdio: ["ignore", log, log] });
  fs.closeSync(log);
  return child;
}

/**
 * A self-signed certificate that is both every process's own certificate and the one CA they
 * trust, and the volume options that turn TLS on for clients and bricks.
 */
async function enableTls(dir: string, volume: string): Promise<void> {
  const tlsDir = path.join(dir, "tls");
  fs.mkdirSync(tlsDir, { recursive: true });
  const key = path.join(tlsDir, "glusterfs.key");
  const cert = path.join(tlsDir, "glusterfs.pem");
  await execOk("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=trivet-bench"]);
  const options: [string, string][] = [
    ["ssl.own-cert", cert],
    ["ssl.private-key", key],
    ["ssl.ca-list", cert],
    ["auth.ssl-allow", "trivet-bench"],
    ["client.ssl", "on"],
    ["server.ssl", "on"],
  ];
  for (const [option, value] of options) await glusterOk(["volume", "set", volume, option, value]);
}

/** Sets the virt group; if glusterd refuses it as a whole, sets its options one by one and keeps the refusals. */
async function setVirtGroup(dir: string, volume: string): Promise<{ option: string; reason: string }[]> {
  if ((await gluster(["volume", "set", volume, "group", "virt"])).code === 0) return [];
  const dropped: { option: string; reason: string }[] = [];
  const lines = fs.readFileSync(path.join(dir, "wd", "groups", "virt"), "utf8").split("\n").filter((l) => l.includes("="));
  for (const line of lines) {
    const [option = "", value = ""] = line.split("=");
    const r = await gluster(["volume", "set", volume, option.trim(), value.trim()]);
    if (r.code !== 0) dropped.push({ option: option.trim(), reason: r.out });
  }
  return dropped;
}

function pidsOf(volume: string): number[] {
  const files = [path.join("/var/run/gluster/vols", volume), path.join("/var/run/gluster/shd", volume)]
    .filter((d) => fs.existsSync(d))
    .flatMap((d) => fs.readdirSync(d).filter((f) => f.endsWith(".pid")).map((f) => path.join(d, f)));
  return files.map((f) => Number(fs.readFileSync(f, "utf8").trim())).filter((n) => Number.isInteger(n) && n > 0);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  const t = setTimeout(() => child.kill("SIGKILL"), exitWaitMs);
  await gone;
  clearTimeout(t);
}

export async function startGluster(opts: GlusterOptions): Promise<GlusterVolume> {
  if (await portInUse(glusterdPort)) throw new GlusterError("gluster_busy", `starting glusterd: port ${glusterdPort} is already in use (a glusterd runs here; not touching it)`);
  const before = snapshot();
  const glusterd = startGlusterd(opts.dir);
  let brickPids: number[] = [];
  let created = false;
  const stop = async (): Promise<void> => {
    if (created) {
      await gluster(["volume", "stop", opts.volume, "force"]);
      await gluster(["volume", "delete", opts.volume]);
    }
    await stopChild(glusterd);
    // Bricks and the self-heal daemon outlive glusterd; ours are known by their pid files.
    for (const pid of brickPids.filter(alive)) process.kill(pid, "SIGTERM");
    await until("the bricks to exit", async () => !brickPids.some(alive)).catch(() => brickPids.filter(alive).forEach((p) => process.kill(p, "SIGKILL")));
    removeAdded(before);
    fs.rmSync(opts.dir, { recursive: true, force: true });
  };
  try {
    await until("glusterd to answer", async () => glusterd.exitCode === null && (await gluster(["volume", "list"])).code === 0);
    const brickDirs = opts.brickHosts.map((_, i) => path.join(opts.dir, "bricks", `b${i + 1}`));
    for (const d of brickDirs) fs.mkdirSync(d, { recursive: true });
    const bricks = opts.brickHosts.map((h, i) => `${h}:${brickDirs[i]}`);
    await glusterOk(["volume", "create", opts.volume, "replica", String(bricks.length), ...bricks, "force"]);
    created = true;
    const droppedOptions = await setVirtGroup(opts.dir, opts.volume);
    if (opts.tls === true) await enableTls(opts.dir, opts.volume);
    await glusterOk(["volume", "start", opts.volume]);
    await until(`${bricks.length} bricks of ${opts.volume} online`, async () => {
      // The text form wraps long brick paths mid-name; the XML form has one <node> per process.
      const out = (await gluster(["volume", "status", opts.volume, "--xml"])).out;
      const online = out.split("<node>").filter((n) => /<path>\//.test(n) && /<status>1<\/status>/.test(n));
      return online.length === bricks.length;
    });
    brickPids = pidsOf(opts.volume);
    return { volume: opts.volume, host: opts.brickHosts[0] ?? "127.0.0.1", droppedOptions, stop };
  } catch (err) {
    brickPids = pidsOf(opts.volume);
    await stop();
    throw err;
  }
}
