// `npm run bench:ui`: the web UI's weight and speed. Builds ui/dist, reports the gzipped size of
// its JS (what a first visit loads, and with the lazy chunks such as noVNC) and CSS, then on a three-node cluster of real daemons measures, in Debian's chromium
// (headless), the time from navigation start to the Nodes table rendered with every node, for a
// signed-in user with an empty browser cache (cold) and with the hashed assets cached (warm); then
// creates 500 VM records (16 MiB each, not started) and measures the time from navigation to the
// VM list rendered: its first page of rows and the total "500 of 500 VMs" shown.
// Environment: BENCH_RUNS (default 5; the median is reported), CHROMIUM_PATH.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { chromium, type Browser, type BrowserContext } from "playwright-core";
import { VmService } from "../../core/api/gen/trivet/v1/vm_pb.ts";
import { adminPassword, DaemonCluster, type DaemonNode } from "../cluster/daemon-cluster.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const assetsDir = path.join(repoRoot, "ui/dist/assets");
const runs = Number(process.env.BENCH_RUNS ?? 5);
const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const chromiumArgs = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const renderTimeoutMs = 30_000;
const buildTimeoutMs = 120_000;
const nodeCount = 3;
const vmCount = 500;
/** Rows on the VM list's first page (ui/src/vm/VmsPage.tsx vmsPerPageDefault). */
const vmFirstPageRows = 20;
/** CreateVm calls in flight at once while seeding. */
const seedConcurrency = 8;
/** The host agents report their facts (needed to place a VM) shortly after the daemons start. */
const hostsReadyMs = 60_000;

function gzipKbOf(files: readonly string[]): number {
  const bytes = files.reduce((n, f) => n + gzipSync(fs.readFileSync(path.join(assetsDir, f)), { level: 6 }).byteLength, 0);
  return +(bytes / 1024).toFixed(1);
}

function gzipKb(ext: string): number {
  return gzipKbOf(fs.readdirSync(assetsDir).filter((f) => f.endsWith(ext)));
}

/**
 * The JS a first visit loads: the entry script named by index.html and the chunks it imports
 * statically (`from"/assets/chunk-….js"`); lazy chunks (`import("/assets/….js")`, noVNC) are not.
 */
function initialJsFiles(): string[] {
  const html = fs.readFileSync(path.join(assetsDir, "../index.html"), "utf8");
  const entry = /<script type="module" src="\/assets\/([^"]+\.js)">/.exec(html)?.[1];
  if (!entry) throw new Error("ui/dist/index.html names no entry script");
  const files = new Set([entry]);
  for (const f of files) {
    const js = fs.readFileSync(path.join(assetsDir, f), "utf8");
    for (const m of js.matchAll(/from\s*"\/assets\/([^"]+\.js)"/g)) files.add(m[1]!);
  }
  return [...files];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/**
 * Milliseconds from navigation start to `path` until `doneJs` (a JS expression evaluated in the
 * page) holds, measured in the page.
 */
async function renderedMs(ctx: BrowserContext, url: string, path: string, doneJs: string): Promise<number> {
  const page = await ctx.newPage();
  try {
    await page.goto(`${url}${path}`, { waitUntil: "commit" });
    // Runs in the page (as source text: the test runner's transform would add helpers the page
    // lacks): resolves with performance.now(), ms since navigation start, once the rows exist.
    const ms = Number(await page.evaluate(`new Promise((resolve, reject) => {
      const done = () => ${doneJs};
      if (done()) return resolve(performance.now());
      const obs = new MutationObserver(() => { if (done()) { obs.disconnect(); resolve(performance.now()); } });
      obs.observe(document.body, { childList: true, subtree: true });
      setTimeout(() => reject(new Error("${path} not rendered within ${renderTimeoutMs} ms")), ${renderTimeoutMs});
    })`));
    return Math.round(ms);
  } finally {
    await page.close();
  }
}

const nodesTableMs = (ctx: BrowserContext, url: string) =>
  renderedMs(ctx, url, "/nodes", `document.querySelectorAll("[data-testid^=node-row-]").length >= ${nodeCount}`);

const vmListMs = (ctx: BrowserContext, url: string) =>
  renderedMs(ctx, url, "/vms", `document.querySelectorAll("[data-testid^=vm-row-]").length >= ${vmFirstPageRows}
    && document.querySelector("[data-testid=vm-count]")?.textContent === "${vmCount} of ${vmCount} VMs"`);

/** Creates `vmCount` stopped VM records of 16 MiB (the smallest), spread by the cluster's placement. */
async function seedVms(c: DaemonCluster, n: DaemonNode): Promise<void> {
  const api = c.client(n);
  try {
    const create = (i: number) => api.call(VmService, "createVm", { name: `bench-${String(i).padStart(3, "0")}`, config: { vcpus: 1, memoryMib: 16n } });
    await DaemonCluster.retry(() => create(0), hostsReadyMs);
    let next = 1;
    const worker = async () => { for (let i = next++; i < vmCount; i = next++) await create(i); };
    await Promise.all(Array.from({ length: seedConcurrency }, worker));
    const listed = (await api.call(VmService, "listVms", {})).vms.length;
    if (listed !== vmCount) throw new Error(`seeding VMs: ${listed} listed, ${vmCount} expected`);
  } finally {
    api.close();
  }
}

async function signedInState(browser: Browser, url: string) {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  await page.goto(url);
  await page.getByLabel("Username").fill("admin");
  await page.getByLabel("Password").fill(adminPassword);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Dashboard", level: 1 }).waitFor({ timeout: renderTimeoutMs });
  const state = await ctx.storageState();
  await ctx.close();
  return state;
}

async function startCluster(c: DaemonCluster): Promise<DaemonNode> {
  const nodes: DaemonNode[] = [];
  for (let i = 1; i <= nodeCount; i++) nodes.push(await c.allocate(`n${i}`));
  const first = nodes[0]!;
  c.init(first);
  c.serve(first);
  await c.login(first);
  for (const [i, n] of nodes.slice(1).entries()) {
    const r = c.join(n, await c.token(first));
    if (r.code !== 0) throw new Error(`joining ${n.name}: ${r.stderr}`);
    c.serve(n);
    await c.waitForVoters(first, i === 0 ? 1 : 3);
  }
  return first;
}

async function main(): Promise<void> {
  execFileSync(process.execPath, [path.join(repoRoot, "ui/build.mjs")], { cwd: repoRoot, stdio: "inherit", timeout: buildTimeoutMs });
  const jsKb = gzipKbOf(initialJsFiles());
  const jsTotalKb = gzipKb(".js");
  const cssKb = gzipKb(".css");
  console.log(`bundle: JS ${jsKb} KiB gzipped loaded at first (${jsTotalKb} KiB with the lazy chunks), CSS ${cssKb} KiB gzipped`);
  const c = new DaemonCluster();
  let browser: Browser | undefined;
  try {
    const n1 = await startCluster(c);
    const url = `https://${n1.http}`;
    browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs, headless: true });
    const storageState = await signedInState(browser, url);
    const cold: number[] = [];
    const warm: number[] = [];
    for (let i = 0; i < runs; i++) {
      const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 }, storageState });
      cold.push(await nodesTableMs(ctx, url));
      warm.push(await nodesTableMs(ctx, url));
      await ctx.close();
    }
    console.log(`navigation → nodes table (${nodeCount} nodes): cold cache ${cold.join(", ")} ms; warm cache ${warm.join(", ")} ms`);
    const t0 = performance.now();
    await seedVms(c, n1);
    console.log(`seeded ${vmCount} VMs in ${Math.round(performance.now() - t0)} ms`);
    const vmCold: number[] = [];
    const vmWarm: number[] = [];
    for (let i = 0; i < runs; i++) {
      const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 }, storageState });
      vmCold.push(await vmListMs(ctx, url));
      vmWarm.push(await vmListMs(ctx, url));
      await ctx.close();
    }
    console.log(`navigation → VM list (${vmCount} VMs, first page and total shown): cold cache ${vmCold.join(", ")} ms; warm cache ${vmWarm.join(", ")} ms`);
    console.log(JSON.stringify({
      bench: "ui", js_gzip_kb: jsKb, js_total_gzip_kb: jsTotalKb, vm_list_500_ms: median(vmCold), vm_list_500_warm_ms: median(vmWarm),
      css_gzip_kb: cssKb, first_render_ms: median(cold), first_render_warm_ms: median(warm),
    }));
  } finally {
    await browser?.close();
    await c.stop();
  }
}

main().catch((err) => {
  console.error(`bench:ui failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  process.exitCode = 1;
});
