// The demo's sample guest: the Trivet test guest (the Debian cloud kernel and a busybox-static
// initramfs whose init prints TRIVET-GUEST-READY and keeps a shell on the serial console), built
// on this host by the one script that defines it, test/guest/build.sh. The single executable
// carries that script and its init.sh as SEA assets (cmd/build/assets.mjs); they are extracted
// into the cache directory and run there, so the demo builds the same guest the tests boot.
// The result is copied to fixed paths under the demo's data directory: a VM's kernel path is
// part of its configuration, and build.sh prunes its older builds from the cache.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import { homedir, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as sea from "node:sea";
import { cacheRoots, materialize, prepareRoot } from "./native.ts";

/** SEA asset names of the guest's build files; the build embeds test/guest/<file> under them. */
export const guestScriptAssets = { build: "guest/build.sh", init: "guest/init.sh" } as const;

/** A first build may download the kernel package (~27 MB) when it is not installed. */
export const guestBuildTimeoutMs = 300_000;
/** Output kept from a failed build for the error message. */
const buildOutputCharsMax = 4000;
const scriptHashChars = 16;

export class DemoGuestError extends Error {
  constructor(readonly code: "guest_missing_package" | "guest_build_failed" | "guest_no_cache", message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "DemoGuestError";
  }
}

export interface GuestFiles {
  kernel: string;
  initrd: string;
}

/** What the build needs from the host, and the Debian package that provides each. */
export interface HostTools {
  busybox: boolean;
  cpio: boolean;
  gzip: boolean;
  /** linux-image-cloud-amd64 is installed (else build.sh tries `apt-get download`). */
  kernelPackage: boolean;
}

/** The Debian packages the guest build is missing for sure (the kernel can still be downloaded). */
export function missingPackages(t: HostTools): string[] {
  return [...(t.busybox ? [] : ["busybox-static"]), ...(t.cpio ? [] : ["cpio"]), ...(t.gzip ? [] : ["gzip"])];
}

/** The kernel and initramfs paths from build.sh's last lines, or undefined when it printed none. */
export function parseBuildOutput(output: string): GuestFiles | undefined {
  const value = (name: string): string | undefined => new RegExp(`^${name}=(.+)$`, "m").exec(output)?.[1]?.trim();
  const kernel = value("TRIVET_GUEST_KERNEL");
  const initrd = value("TRIVET_GUEST_INITRD");
  return kernel && initrd ? { kernel, initrd } : undefined;
}

function onPath(cmd: string, env: NodeJS.ProcessEnv): boolean {
  return (env.PATH ?? "/usr/bin:/bin").split(":").some((dir) => dir !== "" && isExecutable(path.join(dir, cmd)));
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Looks the tools up on this host (dpkg's status file for the kernel meta package). */
export function probeHostTools(env: NodeJS.ProcessEnv = process.env): HostTools {
  let status = "";
  try {
    status = fs.readFileSync("/var/lib/dpkg/status", "utf8");
  } catch {
    // Not Debian-like: build.sh says what is missing.
  }
  return {
    busybox: isExecutable("/bin/busybox"), cpio: onPath("cpio", env), gzip: onPath("gzip", env),
    kernelPackage: /^Package: linux-image-cloud-amd64\nStatus: install ok installed$/m.test(status),
  };
}

/** Where the build script is: beside this file when run from source, else extracted from the binary. */
function buildScript(cacheDir: string): string {
  if (!sea.isSea()) return fileURLToPath(new URL("../test/guest/build.sh", import.meta.url));
  const build = new Uint8Array(sea.getAsset(guestScriptAssets.build));
  const init = new Uint8Array(sea.getAsset(guestScriptAssets.init));
  const hash = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
  // build.sh finds init.sh beside itself; one directory per content keeps versions apart.
  const dir = path.join(cacheDir, `script-${hash(Buffer.concat([build, init])).slice(0, scriptHashChars)}`);
  materialize(dir, "init.sh", hash(init), () => init);
  return materialize(dir, "build.sh", hash(build), () => build).path;
}

/** The first usable cache directory for guest builds ($XDG_CACHE_HOME/trivet/guest, …). */
function guestCacheDir(): string {
  const uid = process.getuid?.() ?? -1;
  const failures: string[] = [];
  for (const root of cacheRoots(process.env, homedir(), tmpdir(), uid)) {
    try {
      prepareRoot(root, uid);
      const dir = path.join(root.dir, "guest");
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      return dir;
    } catch (err) {
      failures.push(`${root.dir}: ${(err as Error).message}`);
    }
  }
  throw new DemoGuestError("guest_no_cache", `building the demo guest: no usable cache directory (${failures.join("; ")}); set XDG_CACHE_HOME to a writable directory`);
}

interface ScriptRun {
  code: number | null;
  output: string;
  timedOut: boolean;
  spawnError?: string;
}

function runScript(script: string, env: NodeJS.ProcessEnv, timeoutMs: number, signal?: AbortSignal): Promise<ScriptRun> {
  return new Promise((resolve) => {
    // The signal ends the build when the demo stops before it is done.
    const child = spawn("bash", [script], { env, stdio: ["ignore", "pipe", "pipe"], signal, killSignal: "SIGKILL" });
    let output = "";
    let timedOut = false;
    const collect = (b: Buffer) => {
      output = (output + b.toString("utf8")).slice(-buildOutputCharsMax);
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("error", (err) => {
      clearTimeout(timer);
      resolve({ code: null, output, timedOut, spawnError: err.message });
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output, timedOut });
    });
  });
}

/** Copies `from` to `to` through a temporary name, so a VM never boots a half-copied file. */
function placeFile(from: string, to: string): void {
  const tmp = `${to}.${process.pid}.tmp`;
  fs.copyFileSync(from, tmp);
  fs.renameSync(tmp, to);
}

/**
 * Builds the sample guest if the cache has no current build, and places its kernel and
 * initramfs under `destDir`. Fails naming the Debian package to install when one is missing.
 */
export async function ensureDemoGuest(destDir: string, opts: { tools?: HostTools; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<GuestFiles> {
  const tools = opts.tools ?? probeHostTools();
  const missing = missingPackages(tools);
  const install = (pkgs: string[]) => `install ${pkgs.length > 1 ? "the Debian packages" : "the Debian package"} ${pkgs.join(" ")} (bash cmd/install-deps.sh installs everything the demo needs)`;
  if (missing.length > 0) throw new DemoGuestError("guest_missing_package", `building the demo guest: ${install(missing)}`);
  const cacheDir = guestCacheDir();
  const script = buildScript(cacheDir);
  const timeoutMs = opts.timeoutMs ?? guestBuildTimeoutMs;
  const run = await runScript(script, { ...process.env, TRIVET_GUEST_CACHE: cacheDir }, timeoutMs, opts.signal);
  const built = run.code === 0 ? parseBuildOutput(run.output) : undefined;
  if (!built) {
    const why = run.timedOut ? `timed out after ${timeoutMs / 1000} s` : run.spawnError ?? `exit code ${run.code}`;
    const hint = tools.kernelPackage ? "" : `; the guest kernel comes from linux-image-cloud-amd64, which is not installed: ${install(["linux-image-cloud-amd64"])}`;
    throw new DemoGuestError("guest_build_failed", `building the demo guest with ${script}: ${why}${hint}\n${run.output.trim()}`);
  }
  fs.mkdirSync(destDir, { recursive: true });
  const files = { kernel: path.join(destDir, "vmlinuz"), initrd: path.join(destDir, "initrd.gz") };
  placeFile(built.kernel, files.kernel);
  placeFile(built.initrd, files.initrd);
  return files;
}
