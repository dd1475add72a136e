// Turns a CommonJS bundle plus assets into a Node single-executable application: writes the
// sea-config, has the running node produce the preparation blob, and injects it into a copy of
// the running node binary with postject.
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import postject from "postject";

// The fuse Node looks for to know that a blob was injected (documented in Node's SEA guide).
const SEA_FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";
const SEA_RESOURCE = "NODE_SEA_BLOB";
const BLOB_TIMEOUT_MS = 120_000;

/**
 * @param {{ main: string, assets: Record<string, string>, workDir: string, output: string }} o
 * `output` is written under a temporary name and renamed, so a failed build leaves no binary.
 */
export async function buildSea({ main, assets, workDir, output }) {
  const blob = path.join(workDir, "trivet.blob");
  const config = path.join(workDir, "sea-config.json");
  writeFileSync(config, JSON.stringify({
    main,
    output: blob,
    disableExperimentalSEAWarning: true,
    useSnapshot: false,
    // A V8 code cache of the bundle, made by this same node binary, shortens every start.
    useCodeCache: true,
    assets,
  }, null, 2));
  // Quiet on success; on failure execFileSync's error carries node's output.
  execFileSync(process.execPath, ["--experimental-sea-config", config], { stdio: ["ignore", "pipe", "pipe"], timeout: BLOB_TIMEOUT_MS });

  const tmp = `${output}.tmp-${process.pid}`;
  try {
    copyFileSync(process.execPath, tmp);
    chmodSync(tmp, 0o755);
    await postject.inject(tmp, SEA_RESOURCE, readFileSync(blob), { sentinelFuse: SEA_FUSE });
    renameSync(tmp, output);
  } finally {
    rmSync(tmp, { force: true });
  }
}
