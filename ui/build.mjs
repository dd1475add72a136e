// `npm run build:ui`: bundles the web UI (ui/src/main.tsx, React + PatternFly) with esbuild into
// ui/dist — minified JS and CSS and the fonts/images they use, all under assets/ with content-
// hashed names (served as immutable), plus index.html (served no-cache) that names them. Nothing
// is loaded from outside: the Red Hat fonts come from @patternfly/patternfly's own assets.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const uiDir = path.dirname(fileURLToPath(import.meta.url));
const distDir = path.join(uiDir, "dist");
const assetsDir = path.join(distDir, "assets");

/** index.html: no inline script or style, so the CSP can allow only 'self'. */
function indexHtml(js, css) {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Trivet</title>
<link rel="icon" href="data:,">
${css.map((href) => `<link rel="stylesheet" href="${href}">`).join("\n")}
<script type="module" src="${js}"></script>
</head>
<body>
<div id="root"></div>
<noscript>The Trivet web console needs JavaScript.</noscript>
</body>
</html>
`;
}

async function main() {
  const started = process.hrtime.bigint();
  // Start empty: stale hashed files would otherwise pile up inside the binary.
  rmSync(distDir, { recursive: true, force: true });
  mkdirSync(assetsDir, { recursive: true });
  const result = await esbuild.build({
    entryPoints: { app: path.join(uiDir, "src/main.tsx") },
    outdir: assetsDir,
    entryNames: "[name]-[hash]",
    // Lazy pages (the graphics console's noVNC) become chunks loaded on first use.
    splitting: true,
    chunkNames: "[name]-[hash]",
    assetNames: "[name]-[hash]",
    publicPath: "/assets/",
    bundle: true,
    minify: true,
    format: "esm",
    platform: "browser",
    target: ["chrome110", "firefox115", "safari16"],
    jsx: "automatic",
    legalComments: "linked",
    metafile: true,
    logLevel: "warning",
    define: { "process.env.NODE_ENV": '"production"' },
    loader: { ".woff2": "file", ".woff": "file", ".ttf": "file", ".svg": "file", ".png": "file", ".jpg": "file" },
  });
  const outputs = Object.entries(result.metafile.outputs);
  const entry = outputs.find(([, o]) => o.entryPoint?.endsWith("src/main.tsx"));
  if (!entry) throw new Error("esbuild produced no entry output");
  const href = (file) => "/assets/" + path.relative(assetsDir, path.resolve(file)).split(path.sep).join("/");
  // Only the entry's own CSS: a lazy chunk's CSS repeats PatternFly rules the entry already has
  // (the chunk's own styles are imported by the entry too).
  const css = entry[1].cssBundle ? [href(entry[1].cssBundle)] : [];
  for (const [f] of outputs) {
    if (f.endsWith(".css") && f !== entry[1].cssBundle) rmSync(f, { force: true });
  }
  writeFileSync(path.join(distDir, "index.html"), indexHtml(href(entry[0]), css));
  const kept = outputs.filter(([f]) => !f.endsWith(".css") || f === entry[1].cssBundle);
  const bytes = kept.reduce((n, [, o]) => n + o.bytes, 0);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  process.stdout.write(`built ui/dist: ${kept.length} files, ${(bytes / 1024).toFixed(0)} KiB, ${seconds.toFixed(1)} s\n`);
}

main().catch((err) => {
  process.stderr.write(`ui build failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exitCode = 1;
});
