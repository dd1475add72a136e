// The files embedded into the `trivet` binary as SEA assets, keyed by asset name. Native addons
// come with a manifest (hashes and the cache key) that cmd/native.ts reads at run time. To embed
// more, add one entry to the list in `collectAssets`, e.g. `...dirAssets(root, "ui/dist", "ui/")`.
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";

const NATIVE_MANIFEST_ASSET = "native/manifest.json";
const CACHE_KEY_HASH_CHARS = 16;

function sha256(bytes) {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Every file under `dir` (relative to root), keyed `prefix` + its path relative to `dir`. */
export function dirAssets(root, dir, prefix) {
  const base = path.join(root, dir);
  const out = {};
  for (const entry of readdirSync(base, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const abs = path.join(entry.parentPath ?? entry.path, entry.name);
    out[prefix + path.relative(base, abs).split(path.sep).join("/")] = abs;
  }
  return out;
}

/** The addons of cmd/build/native-addons.json plus their manifest, written into workDir. */
export function nativeAddonAssets(root, workDir, version) {
  const table = JSON.parse(readFileSync(path.join(root, "cmd/build/native-addons.json"), "utf8"));
  const assets = {};
  const addons = {};
  for (const [name, file] of Object.entries(table)) {
    const abs = path.join(root, "node_modules", file);
    const asset = `native/${name}.node`;
    assets[asset] = abs;
    addons[name] = { asset, sha256: sha256(readFileSync(abs)) };
  }
  const combined = sha256(Object.entries(addons).map(([n, a]) => `${n}:${a.sha256}`).join("\n"));
  const manifest = { key: `${version}-${combined.slice(0, CACHE_KEY_HASH_CHARS)}`, addons };
  const manifestFile = path.join(workDir, "native-manifest.json");
  writeFileSync(manifestFile, JSON.stringify(manifest, null, 2));
  assets[NATIVE_MANIFEST_ASSET] = manifestFile;
  return { assets, manifest };
}

/** All assets of the binary: asset key -> absolute file path. */
export function collectAssets(root, workDir, version) {
  const native = nativeAddonAssets(root, workDir, version);
  return {
    assets: {
      ...native.assets,
      ...dirAssets(root, "ui/dist", "ui/"),
      // The demo's sample guest is built on the host by the test guest's own script (cmd/demo-guest.ts).
      "guest/build.sh": path.join(root, "test/guest/build.sh"),
      "guest/init.sh": path.join(root, "test/guest/init.sh"),
    },
    nativeKey: native.manifest.key,
  };
}
