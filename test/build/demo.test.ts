// `trivet demo` end to end: the command from the README starts three daemons and the sample VM.
// Through the API: the VM "sample" runs with its disk on the replicated volume "demo"; its serial
// console has the guest's shell, and after a reset the guest boots again, prints
// TRIVET-GUEST-READY and reads the boot counter its first boot wrote on the volume disk. A Ctrl-C
// (SIGINT to the demo's process group) stops the VM and the demo with no daemon or QEMU left; a second start on the same data directory reuses
// the volume and the VM. Runs dist/trivet when it is newer than its sources, else the sources.
import { spawn, type ChildProcess } from "node:child_process";
import { randomInt } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { afterAll, describe, expect, it } from "vitest";
import { ApiClient } from "../../core/api/client.ts";
import { openConsole } from "../../core/api/console/grpc-client.ts";
import { AuthService, CredentialKind } from "../../core/api/gen/trivet/v1/auth_pb.ts";
import { ImageService, VolumeService } from "../../core/api/gen/trivet/v1/storage_pb.ts";
import { VmService } from "../../core/api/gen/trivet/v1/vm_pb.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const distBinary = path.join(root, "dist", "trivet");
/** A first start may build the guest (and download its kernel package) while three daemons start. */
const demoReadyTimeoutMs = 300_000;
const demoStopTimeoutMs = 60_000;
/** TCG boot of the guest on a loaded two-core machine. */
const bootTimeoutMs = 120_000;
const shellPollMs = 2000;
const waitPollMs = 100;
const sourceDirs = ["cmd", "core", "storage", "ui/src", "test/guest", "package.json"];

function newestMtimeMs(p: string): number {
  const st = fs.statSync(p, { throwIfNoEntry: false });
  if (!st) return 0;
  if (!st.isDirectory()) return st.mtimeMs;
  return fs.readdirSync(p).reduce((m, e) => (e === "node_modules" ? m : Math.max(m, newestMtimeMs(path.join(p, e)))), st.mtimeMs);
}

/** dist/trivet if it was built after every source went in, else the sources through tsx. */
function demoCommand(args: string[]): { cmd: string; args: string[]; what: string } {
  const built = fs.statSync(distBinary, { throwIfNoEntry: false })?.mtimeMs ?? 0;
  const fresh = built > Math.max(...sourceDirs.map((d) => newestMtimeMs(path.join(root, d))));
  if (fresh && process.env.TRIVET_DEMO_TEST_SOURCE !== "1") return { cmd: distBinary, args: ["demo", ...args], what: "dist/trivet" };
  return { cmd: process.execPath, args: ["--import", "tsx", path.join(root, "cmd/trivet.ts"), "demo", ...args], what: "sources (tsx)" };
}

async function until<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs: number, pollMs = waitPollMs): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`waiting for ${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** Pids of the processes whose command line names `dir` (the daemons and QEMU of one demo). */
function processesUsing(dir: string): number[] {
  return fs.readdirSync("/proc").filter((e) => /^\d+$/.test(e)).flatMap((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(dir) ? [Number(pid)] : [];
    } catch {
      return [];
    }
  });
}

interface Demo {
  child: ChildProcess;
  out: () => string;
  exit: Promise<number | null>;
}

function startDemo(dataDir: string, firstAddress: string): Demo {
  const c = demoCommand(["--data-dir", dataDir, "--first-address", firstAddress]);
  // A process group of its own, so the test can send the group a Ctrl-C as a terminal does.
  const child = spawn(c.cmd, c.args, { cwd: root, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let out = "";
  child.stdout!.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr!.on("data", (b: Buffer) => (out += b.toString()));
  const exit = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  process.stderr.write(`demo test: running ${c.what}\n`);
  return { child, out: () => out, exit };
}

async function waitReady(d: Demo): Promise<string> {
  return until("the demo's 'Press Ctrl-C' line", () => {
    if (d.child.exitCode !== null) throw new Error(`demo exited with ${d.child.exitCode}:\n${d.out()}`);
    return d.out().includes("Press Ctrl-C to stop.") ? d.out() : undefined;
  }, demoReadyTimeoutMs, 250);
}

/** Ctrl-C as a terminal sends it: to the demo's whole process group. */
async function stopDemo(d: Demo, dataDir: string): Promise<void> {
  process.kill(-d.child.pid!, "SIGINT");
  const code = await Promise.race([d.exit, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), demoStopTimeoutMs))]);
  expect(code, d.out()).toBe(0);
  // The VM is stopped through the API while the daemons still form a quorum, not left to the fallback.
  expect(d.out()).not.toMatch(/demo: stopping VM sample:/);
  expect(processesUsing(dataDir), "daemons or QEMU left running").toEqual([]);
}

describe("trivet demo", () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "trivet-demo-test-"));
  const dataDir = path.join(work, "data");
  // An address range of its own, so the default 127.0.0.11-13 and other tests are left alone.
  const firstAddress = `127.${randomInt(100, 250)}.${randomInt(1, 250)}.11`;
  const demos: Demo[] = [];

  // After a failure: the demo's own orderly stop first (it also ends what its daemons started),
  // then SIGKILL for whatever still names the data directory.
  afterAll(async () => {
    for (const d of demos) {
      if (d.child.exitCode !== null || d.child.signalCode !== null) continue;
      process.kill(-d.child.pid!, "SIGINT");
      await Promise.race([d.exit, new Promise((r) => setTimeout(r, demoStopTimeoutMs))]);
      if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill("SIGKILL");
    }
    for (const pid of processesUsing(dataDir)) process.kill(pid, "SIGKILL");
    fs.rmSync(work, { recursive: true, force: true });
  }, demoStopTimeoutMs * 2);

  it("starts three nodes and the sample VM, whose console shows the guest; Ctrl-C stops everything; a restart reuses it", async () => {
    const d = startDemo(dataDir, firstAddress);
    demos.push(d);
    const out = await waitReady(d);
    expect(out).toMatch(/created volume demo, image demo\/sample-disk0, vm sample\n/);
    expect(out).toMatch(/Sample VM "sample" is running on node\d \(pid \d+\)/);
    expect(out).toMatch(/console: trivet vm console sample/);

    const password = /user: admin {2}password: (\S+)/.exec(out)![1]!;
    const [, server, caFile] = /CLI: trivet login --server (\S+) --user admin --ca-file (\S+)/.exec(out)!;
    const creds = grpc.credentials.createSsl(fs.readFileSync(caFile!));
    const anon = new ApiClient(server!, creds);
    const { apiToken } = await anon.call(AuthService, "login", { username: "admin", password, kind: CredentialKind.TOKEN, tokenName: "demo-test" });
    anon.close();
    const api = new ApiClient(server!, creds, { token: apiToken });
    const vm = (await api.call(VmService, "getVm", { name: "sample" })).vm!;
    expect(vm.status?.state).toBe("running");
    expect(vm.vcpus).toBe(1);
    expect(vm.memoryMib).toBe(256n);
    expect(vm.disks.map((x) => `${x.volume}/${x.image}`)).toEqual(["demo/sample-disk0"]);
    expect(vm.nics.map((n) => n.bridge)).toEqual([""]);
    expect((await api.call(VolumeService, "getVolume", { name: "demo" })).volume?.replicaCount).toBe(3);
    expect((await api.call(ImageService, "getImage", { volume: "demo", name: "sample-disk0" })).image?.sizeBytes).toBe(64n * 1024n * 1024n);

    const grpcClient = new grpc.Client(server!, creds);
    let serial = "";
    const con = openConsole(grpcClient, "sample", { token: apiToken, onData: (b) => (serial += Buffer.from(b).toString("latin1")) });
    // The guest's shell computes this, so the echo of the typed line cannot satisfy the wait; once
    // it answers, the first boot has written its counter.
    await until("the guest's shell on the serial console", () => {
      if (serial.includes("hi-42")) return true;
      con.write(Buffer.from("echo hi-$((40+2))\n"));
      return undefined;
    }, bootTimeoutMs, shellPollMs);
    const before = serial.length;
    await api.call(VmService, "resetVm", { name: "sample" });
    const boot = await until("a second boot with the counter and TRIVET-GUEST-READY", () => {
      const again = serial.slice(before);
      const counter = /boot_count=(\d+) write=ok/.exec(again);
      return counter && again.indexOf("TRIVET-GUEST-READY", counter.index) >= 0 ? Number(counter[1]) : undefined;
    }, bootTimeoutMs);
    expect(boot, "the first boot's counter, read back from the volume disk").toBeGreaterThanOrEqual(1);
    con.close();
    grpcClient.close();
    api.close();
    await stopDemo(d, dataDir);

    const again = startDemo(dataDir, firstAddress);
    demos.push(again);
    const out2 = await waitReady(again);
    expect(out2).not.toMatch(/created /);
    expect(out2).toMatch(/Sample VM "sample" is running/);
    const api2 = new ApiClient(server!, creds, { token: apiToken });
    expect((await api2.call(VmService, "listVms", {})).vms.map((v) => v.name)).toEqual(["sample"]);
    expect((await api2.call(VolumeService, "listVolumes", {})).volumes.map((v) => v.name)).toEqual(["demo"]);
    api2.close();
    await stopDemo(again, dataDir);
  }, demoReadyTimeoutMs * 2 + bootTimeoutMs * 2 + demoStopTimeoutMs * 2);
});
