// `npm run build`: bundles cmd/trivet.ts (and everything it imports) into one CommonJS script
// with esbuild, then makes it, the native addons and other assets into the single executable
// dist/trivet (a Node SEA). Intermediate files go to dist/sea/.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { collectAssets } from "./assets.mjs";
import { nativeAddonPlugin } from "./native-plugin.mjs";
import { buildSea } from "./sea.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const distDir = path.join(root, "dist");
const workDir = path.join(distDir, "sea");
const GIT_TIMEOUT_MS = 10_000;

function gitCommit() {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: GIT_TIMEOUT_MS }).trim() || "unknown";
  } catch {
    return "unknown";
  }
}

async function bundle(buildInfo, outfile) {
  await esbuild.build({
    entryPoints: [path.join(root, "cmd/trivet.ts")],
    outfile,
    bundle: true,
    platform: "node",
    format: "cjs", // a Node 20 SEA runs its main script as CommonJS
    target: "node20",
    minifyWhitespace: true,
    minifySyntax: true,
    keepNames: true,
    legalComments: "none",
    sourcemap: "external",
    logLevel: "warning",
    define: {
      TRIVET_BUILD_INFO: JSON.stringify(buildInfo),
      // CommonJS has no import.meta; give modules that use it the URL of the running file.
      "import.meta.url": "__trivetImportMetaUrl",
      // ws tries the optional native addons bufferutil and utf-8-validate; a SEA can only
      // require built-ins (and warns on every start), so the bundle never asks for them.
      "process.env.WS_NO_BUFFER_UTIL": '"1"',
      "process.env.WS_NO_UTF_8_VALIDATE": '"1"',
    },
    banner: { js: `var __trivetImportMetaUrl = require("node:url").pathToFileURL(__filename).href;` },
    plugins: [nativeAddonPlugin({ nativeModule: path.join(root, "cmd/native.ts") })],
  });
}

async function main() {
  const started = process.hrtime.bigint();
  const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8"));
  const buildInfo = { version: pkg.version, commit: gitCommit(), builtAt: new Date().toISOString() };
  mkdirSync(workDir, { recursive: true });

  const main = path.join(workDir, "trivet.cjs");
  await bundle(buildInfo, main);
  const { assets, nativeKey } = collectAssets(root, workDir, buildInfo.version);
  const output = path.join(distDir, "trivet");
  await buildSea({ main, assets, workDir, output });

  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const mib = statSync(output).size / (1024 * 1024);
  process.stdout.write(`built ${path.relative(root, output)}: trivet ${buildInfo.version} (commit ${buildInfo.commit}), ` +
    `${Object.keys(assets).length} assets, native cache key ${nativeKey}\n` +
    `build time ${seconds.toFixed(1)} s, binary size ${mib.toFixed(1)} MiB\n`);
}

main().catch((err) => {
  process.stderr.write(`build failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exitCode = 1;
});
