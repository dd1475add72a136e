// Benchmark: what Trivet adds to a VM start. On a single-node cluster of a real daemon, the time
// from the API's StartVm call to the test guest's ready marker on the serial console, next to a
// plain qemu-system-x86_64 started directly with the exact argv the host agent used (its run
// directory's runtime.json, paths moved to a directory of our own), marker read the same way.
// Runs alternate between the two so machine load hits both alike. The part of Trivet's time
// before QEMU is spawned (API, Raft, host agent) is read from the start mark the runtime writes
// in qemu.log. Last line is JSON.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import type { ApiClient } from "../../core/api/client.ts";
import { VmService, type Vm } from "../../core/api/gen/trivet/v1/vm_pb.ts";
import { DaemonCluster } from "../cluster/daemon-cluster.ts";
import { ensureGuest, guestReadyMarker } from "../guest/guest.ts";
import { SerialReader } from "../vm/serial.ts";

const runsCount = 5;
const bootTimeoutMs = 120_000;
const statusTimeoutMs = 60_000;
const socketWaitMs = 30_000;
const socketPollMs = 10;
const qemuExitWaitMs = 10_000;
const markerPattern = new RegExp(`^${guestReadyMarker}$`);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : Math.round(((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2);
}

/** Connects to the serial socket once it exists and returns when the marker line arrives (its arrival time). */
async function markerAtMs(socketPath: string): Promise<number> {
  await DaemonCluster.retry(async () => fs.statSync(socketPath), socketWaitMs, socketPollMs);
  const reader = await SerialReader.connect(socketPath);
  try {
    const at = await reader.waitForLine(markerPattern, bootTimeoutMs);
    return reader.lines[at]!.atMs;
  } finally {
    reader.close();
  }
}

async function waitState(api: ApiClient, name: string, ok: (v: Vm) => boolean, what: string): Promise<Vm> {
  return DaemonCluster.retry(async () => {
    const v = (await api.call(VmService, "getVm", { name })).vm!;
    if (!ok(v)) throw new Error(`VM ${name}: waiting for ${what}; state ${v.status?.state} ${v.status?.error ?? ""}`);
    return v;
  }, statusTimeoutMs, 50);
}

/** Wall-clock time of the last "starting QEMU … at ISO" mark in the run directory's qemu.log. */
function lastSpawnAtMs(runDir: string): number {
  const marks = [...fs.readFileSync(path.join(runDir, "qemu.log"), "utf8").matchAll(/--- trivet: starting QEMU for \S+ at (\S+) ---/g)];
  const iso = marks.at(-1)?.[1];
  if (iso === undefined) throw new Error(`no start mark in ${runDir}/qemu.log`);
  return Date.parse(iso);
}

/** Milliseconds from StartVm to the marker, and from StartVm to the spawn of QEMU. */
async function trivetRun(api: ApiClient, runDir: string): Promise<{ ms: number; dispatchMs: number }> {
  const socketPath = path.join(runDir, "serial.sock");
  const t0Wall = Date.now();
  const t0 = performance.now();
  await api.call(VmService, "startVm", { name: "bench" });
  const ms = Math.round((await markerAtMs(socketPath)) - t0);
  const dispatchMs = lastSpawnAtMs(runDir) - t0Wall;
  await api.call(VmService, "stopVm", { name: "bench" });
  await waitState(api, "bench", (v) => v.status?.state === "stopped" && v.status.pid === 0n, "stopped");
  // A stale socket file would be connected to (and refused) until the next QEMU replaces it.
  fs.rmSync(socketPath, { force: true });
  return { ms, dispatchMs };
}

/** The agent's argv with its run directory replaced by `dir` (sockets, pidfile; disks stay where they are). */
function plainArgv(recorded: string[], runDir: string, dir: string): string[] {
  return recorded.map((a) => a.split(runDir).join(dir));
}

async function qemuRun(argv: string[], dir: string): Promise<number> {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const t0 = performance.now();
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (b: Buffer) => (stderr += b.toString("utf8")));
  const exited = new Promise((r) => child.once("exit", r));
  try {
    return Math.round((await markerAtMs(path.join(dir, "serial.sock"))) - t0);
  } catch (err) {
    throw new Error(`plain QEMU: ${(err as Error).message}; its stderr: ${stderr.slice(-2000)}`);
  } finally {
    child.kill("SIGKILL");
    await Promise.race([exited, new Promise((r) => setTimeout(r, qemuExitWaitMs))]);
  }
}

async function main(): Promise<void> {
  const image = await ensureGuest();
  const c = new DaemonCluster();
  const n = await c.allocate("n1");
  let api: ApiClient | undefined;
  try {
    c.init(n);
    c.serve(n);
    await c.login(n);
    api = c.client(n);
    const client = api;
    const created = await DaemonCluster.retry(() => client.call(VmService, "createVm", {
      name: "bench",
      config: { vcpus: 1, memoryMib: 256n, nics: [{ mac: "" }], kernelBoot: { kernelPath: image.kernel, initrdPath: image.initrd, append: "console=ttyS0 quiet panic=-1" } },
    }), statusTimeoutMs);
    const vm = created.vm!;
    const runDir = path.join(n.dataDir, "run", vm.id);
    await waitState(client, "bench", (v) => v.status?.state === "stopped", "stopped before start");
    const plainDir = path.join(c.dir, "plain");
    const trivet: number[] = [];
    const qemu: number[] = [];
    const dispatch: number[] = [];
    for (let i = 0; i < runsCount; i++) {
      const t = await trivetRun(client, runDir);
      trivet.push(t.ms);
      dispatch.push(t.dispatchMs);
      const recorded = (JSON.parse(fs.readFileSync(path.join(runDir, "runtime.json"), "utf8")) as { argv: string[] }).argv;
      qemu.push(await qemuRun(plainArgv(recorded, runDir, plainDir), plainDir));
      process.stdout.write(`run ${i + 1}/${runsCount}: trivet ${trivet[i]} ms (StartVm → ${guestReadyMarker}), plain qemu ${qemu[i]} ms (spawn → ${guestReadyMarker}); StartVm → QEMU spawned ${dispatch[i]} ms\n`);
    }
    const trivetMs = median(trivet);
    const qemuMs = median(qemu);
    process.stdout.write(`median of ${runsCount}: trivet ${trivetMs} ms, plain qemu ${qemuMs} ms, overhead ${trivetMs - qemuMs} ms (of it StartVm → QEMU spawned: ${median(dispatch)} ms)\n`);
    process.stdout.write(`${JSON.stringify({ bench: "vm", trivet_ms: trivetMs, qemu_ms: qemuMs, overhead_ms: trivetMs - qemuMs, trivet_runs: trivet, qemu_runs: qemu, dispatch_ms: median(dispatch) })}\n`);
    await client.call(VmService, "deleteVm", { name: "bench" });
  } finally {
    api?.close();
    await c.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench vm: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
