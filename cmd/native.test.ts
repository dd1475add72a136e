// Tests of the native addon loader: where extracted addons go, extraction that happens once and
// survives damage, and loading from node_modules when running from source.
import { createHash } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { cacheRoots, loadNativeAddon, materialize, NativeAddonError, prepareRoot } from "./native.ts";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

describe("cacheRoots", () => {
  it("prefers XDG_CACHE_HOME, then ~/.cache, then /var/cache, then a per-user private tmp dir", () => {
    expect(cacheRoots({ XDG_CACHE_HOME: "/x/cache" }, "/home/ann", "/tmp", 1000)).toEqual([
      { dir: "/x/cache/trivet", mustBePrivate: false },
      { dir: "/home/ann/.cache/trivet", mustBePrivate: false },
      { dir: "/var/cache/trivet", mustBePrivate: false },
      { dir: "/tmp/trivet-1000", mustBePrivate: true },
    ]);
  });

  it("ignores a relative XDG_CACHE_HOME and an empty home, as the XDG spec says", () => {
    expect(cacheRoots({ XDG_CACHE_HOME: "rel/cache" }, "", "/tmp", 0).map((r) => r.dir)).toEqual(["/var/cache/trivet", "/tmp/trivet-0"]);
  });
});

describe("materialize and prepareRoot", () => {
  let dir: string;
  const bytes = new Uint8Array(Buffer.from("not really an ELF file, but bytes all the same"));
  const hash = sha(bytes);

  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), "trivet-native-test-")); });
  afterEach(() => { rmSync(dir, { recursive: true, force: true }); });

  it("extracts once, executable, and then reuses the file untouched", () => {
    let reads = 0;
    const get = () => { reads++; return bytes; };
    const first = materialize(join(dir, "key"), "a.node", hash, get);
    expect(first.extracted).toBe(true);
    expect(new Uint8Array(readFileSync(first.path))).toEqual(bytes);
    expect(statSync(first.path).mode & 0o777).toBe(0o755);
    const st = statSync(first.path);

    const second = materialize(join(dir, "key"), "a.node", hash, get);
    expect(second).toEqual({ path: first.path, extracted: false });
    expect(reads).toBe(1);
    expect(statSync(second.path).ino).toBe(st.ino);
    expect(readdirSync(join(dir, "key"))).toEqual(["a.node"]);
  });

  it("rewrites a damaged file", () => {
    mkdirSync(join(dir, "key"));
    writeFileSync(join(dir, "key", "a.node"), "truncated");
    const r = materialize(join(dir, "key"), "a.node", hash, () => bytes);
    expect(r.extracted).toBe(true);
    expect(new Uint8Array(readFileSync(r.path))).toEqual(bytes);
  });

  it("refuses embedded bytes that do not match the manifest, writing nothing", () => {
    const bad = () => materialize(join(dir, "key"), "a.node", sha(new Uint8Array([1])), () => bytes);
    expect(bad).toThrow(NativeAddonError);
    expect(bad).toThrow(/do not match the manifest/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it("accepts a private root and rejects one that others can write", () => {
    const uid = process.getuid?.() ?? 0;
    const priv = { dir: join(dir, "trivet-priv"), mustBePrivate: true };
    prepareRoot(priv, uid);
    expect(statSync(priv.dir).mode & 0o777).toBe(0o700);

    const open = { dir: join(dir, "trivet-open"), mustBePrivate: true };
    mkdirSync(open.dir);
    chmodSync(open.dir, 0o777);
    expect(() => prepareRoot(open, uid)).toThrow(/not a private directory/);
    expect(() => prepareRoot(priv, uid + 1)).toThrow(/not a private directory/);
  });
});

describe("loadNativeAddon from source", () => {
  it("loads better-sqlite3's addon from node_modules", () => {
    const addon = loadNativeAddon("better_sqlite3");
    expect(addon.path).toMatch(/node_modules\/better-sqlite3\/build\/Release\/better_sqlite3\.node$/);
    expect(typeof (addon.exports as { Database?: unknown }).Database).toBe("function");
    expect(loadNativeAddon("better_sqlite3")).toBe(addon);
  });

  it("names the addon it does not know", () => {
    expect(() => loadNativeAddon("nope")).toThrow(expect.objectContaining({ code: "native_unknown_addon", message: expect.stringContaining("nope") }));
  });
});
