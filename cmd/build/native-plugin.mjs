// esbuild plugin for the single-executable build: points the native addon loaders of
// better-sqlite3 and node-pty at cmd/native.ts (which extracts the addons from the binary), and
// fails the build on any other .node import, so that no addon is silently left out.
import path from "node:path";

const NAMESPACE = "trivet-native";

// Each shim replaces a package's loader module; `require("./native.ts")` resolves in cmd/.
const SHIMS = {
  // better-sqlite3's lib/database.js calls require("bindings")("better_sqlite3.node").
  bindings: `module.exports = (name) => require("./native.ts").loadNativeAddon(String(name).replace(/\\.node$/, "")).exports;`,
  // node-pty's lib/*.js call require("./utils").loadNativeModule(name) and use { dir, module }.
  "node-pty-utils": [
    `const native = require("./native.ts");`,
    `exports.assign = (target, ...sources) => Object.assign(target, ...sources);`,
    `exports.loadNativeModule = (name) => ({ dir: native.nativeAddonDir(name) + "/", module: native.loadNativeAddon(name).exports });`,
  ].join("\n"),
};

function inPackage(importer, name) {
  return importer.split(path.sep).join("/").includes(`/node_modules/${name}/`);
}

/** @param {{ nativeModule: string }} options absolute path of cmd/native.ts */
export function nativeAddonPlugin({ nativeModule }) {
  return {
    name: "trivet-native-addons",
    setup(build) {
      build.onResolve({ filter: /^bindings$/ }, (args) =>
        inPackage(args.importer, "better-sqlite3") ? { path: "bindings", namespace: NAMESPACE } : undefined);
      build.onResolve({ filter: /^\.\/utils$/ }, (args) =>
        inPackage(args.importer, "node-pty") ? { path: "node-pty-utils", namespace: NAMESPACE } : undefined);
      build.onResolve({ filter: /\.node$/ }, (args) => ({
        errors: [{ text: `native addon ${args.path} (imported by ${args.importer}) is not embedded: add it to cmd/build/native-addons.json and redirect its loader in cmd/build/native-plugin.mjs` }],
      }));
      build.onLoad({ filter: /.*/, namespace: NAMESPACE }, (args) => ({
        contents: SHIMS[args.path],
        loader: "js",
        resolveDir: path.dirname(nativeModule),
      }));
    },
  };
}
