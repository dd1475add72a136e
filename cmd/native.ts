// Native addons (better-sqlite3, node-pty) inside the single-executable `trivet`. The build embeds
// each .node file as a SEA asset (the list is cmd/build/native-addons.json). A shared library
// cannot be loaded from memory, so at run time an addon is extracted once into a cache directory
// keyed by the build's version and the addons' content hash, and loaded from there. Run from
// source (tsx) or as a plain bundle, the addon comes from node_modules as usual. The bundler
// redirects the packages' own loaders (better-sqlite3's `bindings`, node-pty's
// `loadNativeModule`) to `loadNativeAddon`, so code simply imports the packages.
import { createHash, randomBytes } from "node:crypto";
import { closeSync, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { homedir, tmpdir } from "node:os";
import { dirname, isAbsolute, join } from "node:path";
import * as sea from "node:sea";
import addonFiles from "./build/native-addons.json" with { type: "json" };

/** The SEA asset that describes the embedded addons; written by cmd/build/assets.mjs. */
export const NATIVE_MANIFEST_ASSET = "native/manifest.json";

export interface NativeManifest {
  /** Directory name under the cache root: the build's version and a hash of all addons. */
  key: string;
  addons: Record<string, { asset: string; sha256: string }>;
}

export type NativeAddonErrorCode = "native_unknown_addon" | "native_bad_manifest" | "native_extract_failed";

export class NativeAddonError extends Error {
  constructor(readonly code: NativeAddonErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NativeAddonError";
  }
}

export interface CacheRoot {
  dir: string;
  /** The root sits in a directory other users can write (/tmp): it must be ours and private. */
  mustBePrivate: boolean;
}

/** Where extracted addons may live, most preferred first (XDG base directory spec, then shared). */
export function cacheRoots(env: NodeJS.ProcessEnv, home: string, tmp: string, uid: number): CacheRoot[] {
  const roots: CacheRoot[] = [];
  const xdg = env.XDG_CACHE_HOME;
  if (xdg && isAbsolute(xdg)) roots.push({ dir: join(xdg, "trivet"), mustBePrivate: false });
  if (home && isAbsolute(home)) roots.push({ dir: join(home, ".cache", "trivet"), mustBePrivate: false });
  roots.push({ dir: "/var/cache/trivet", mustBePrivate: false });
  roots.push({ dir: join(tmp, `trivet-${uid}`), mustBePrivate: true });
  return roots;
}

function sha256Of(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function fileSha256(path: string): string | undefined {
  try {
    return sha256Of(readFileSync(path));
  } catch {
    return undefined;
  }
}

/**
 * Makes `dir/fileName` hold the bytes whose SHA-256 is `sha256`. A file that already has that
 * content is reused untouched; otherwise the bytes go to a unique temporary name first and are
 * renamed into place, so a concurrent start never loads a half-written file.
 */
export function materialize(dir: string, fileName: string, sha256: string, bytes: () => Uint8Array): { path: string; extracted: boolean } {
  const path = join(dir, fileName);
  if (fileSha256(path) === sha256) return { path, extracted: false };
  const content = bytes();
  if (sha256Of(content) !== sha256) {
    throw new NativeAddonError("native_bad_manifest", `extracting ${fileName}: embedded bytes do not match the manifest hash ${sha256}; the binary is damaged, rebuild it`);
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${fileName}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    const fd = openSync(tmp, "wx", 0o755);
    try {
      writeFileSync(fd, content);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  return { path, extracted: true };
}

/** Creates a cache root; a root under a shared directory must be a private directory of ours. */
export function prepareRoot(root: CacheRoot, uid: number): void {
  mkdirSync(root.dir, { recursive: true, mode: 0o700 });
  if (!root.mustBePrivate) return;
  const st = lstatSync(root.dir);
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o077) !== 0) {
    throw new Error(`${root.dir} is not a private directory owned by uid ${uid}`);
  }
}

let manifestCache: NativeManifest | undefined;

function manifest(): NativeManifest {
  if (manifestCache) return manifestCache;
  let parsed: unknown;
  try {
    parsed = JSON.parse(sea.getAsset(NATIVE_MANIFEST_ASSET, "utf8"));
  } catch (err) {
    throw new NativeAddonError("native_bad_manifest", `reading the native addon manifest ${NATIVE_MANIFEST_ASSET}: ${String(err)}`, { cause: err });
  }
  const m = parsed as Partial<NativeManifest> | null;
  if (!m || typeof m.key !== "string" || typeof m.addons !== "object" || m.addons === null) {
    throw new NativeAddonError("native_bad_manifest", `reading the native addon manifest ${NATIVE_MANIFEST_ASSET}: missing key or addons`);
  }
  manifestCache = m as NativeManifest;
  return manifestCache;
}

export interface LoadedAddon {
  /** Absolute path of the .node file that was loaded. */
  path: string;
  exports: unknown;
}

const loaded = new Map<string, LoadedAddon>();

/** Extracts (once) and loads an embedded addon, trying each cache root until one works. */
function loadFromSea(name: string): LoadedAddon {
  const m = manifest();
  const entry = m.addons[name];
  if (!entry) throw new NativeAddonError("native_unknown_addon", `loading native addon ${name}: not embedded in this build (have: ${Object.keys(m.addons).join(", ")})`);
  const uid = process.getuid?.() ?? -1;
  const failures: string[] = [];
  for (const root of cacheRoots(process.env, homedir(), tmpdir(), uid)) {
    try {
      prepareRoot(root, uid);
      const { path } = materialize(join(root.dir, m.key), `${name}.node`, entry.sha256, () => new Uint8Array(sea.getAsset(entry.asset)));
      const mod = { exports: {} as unknown };
      // A root on a noexec mount fails here, which is why loading is inside the fallback loop.
      process.dlopen(mod, path);
      return { path, exports: mod.exports };
    } catch (err) {
      failures.push(`${root.dir}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw new NativeAddonError("native_extract_failed", `loading native addon ${name}: no usable cache directory (${failures.join("; ")}); set XDG_CACHE_HOME to a writable, exec-mounted directory`);
}

/** Source or plain-bundle mode: the addon file inside node_modules. */
function loadFromNodeModules(name: string): LoadedAddon {
  const file = (addonFiles as Record<string, string>)[name];
  if (!file) throw new NativeAddonError("native_unknown_addon", `loading native addon ${name}: not listed in cmd/build/native-addons.json`);
  const require = createRequire(import.meta.url);
  const path = require.resolve(file);
  return { path, exports: require(path) as unknown };
}

/** Loads native addon `name` (e.g. "better_sqlite3", "pty") from the binary or node_modules. */
export function loadNativeAddon(name: string): LoadedAddon {
  let addon = loaded.get(name);
  if (!addon) {
    addon = sea.isSea() ? loadFromSea(name) : loadFromNodeModules(name);
    loaded.set(name, addon);
  }
  return addon;
}

/** The directory the addon was loaded from (node-pty looks for helpers beside its addon). */
export function nativeAddonDir(name: string): string {
  return dirname(loadNativeAddon(name).path);
}
