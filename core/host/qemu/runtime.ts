// The QEMU runtime: starts a VM's QEMU as a supervised process in its own session (so the
// daemon's death never takes the guest with it), connects QMP, tracks the run state from QMP
// events and query-status, collects the exit status, and re-attaches to a running QEMU after a
// daemon restart from what the run directory holds. Operations: pause, resume, reset, ACPI
// shutdown (then forced), forced stop (quit, then SIGKILL), status.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { buildQemuArgv } from "./cmdline.ts";
import { growDiskOnline, type GrowResult, type GrowTarget } from "./disk-grow.ts";
import { cmdlineIsQemuFor, parseProcUptimeMs, processAlive, readCmdline, readProcStat } from "./proc.ts";
import * as qmp from "./qmp/commands.ts";
import { QmpMonitor } from "./qmp/monitor.ts";
import type { QmpEvent } from "./qmp/monitor.ts";
import { QemuRuntimeError, lastStartOutput, openLogForStart, qemuLogFileName, readPidFile, readRuntimeRecord, trimLog, writeRuntimeRecord } from "./rundir.ts";
import type { RuntimeRecord } from "./rundir.ts";
import type { QemuHostFacts, VmSpec } from "./spec.ts";
import { initialVmState, reduceVmState } from "./state.ts";
import type { VmExit, VmRunState, VmStateContext, VmStateInput } from "./state.ts";

export { QemuRuntimeError } from "./rundir.ts";
export type { VmExit, VmRunState } from "./state.ts";

/** Until QMP answers; TCG on a busy 2-core build machine needs a few seconds for a cold start. */
export const qmpStartTimeoutMs = 15_000;
export const qmpConnectPollMs = 25;
export const qmpHandshakeTimeoutMs = 3000;
/** How often a re-attached QEMU (not our child: no exit event) is checked for having exited. */
export const exitPollMs = 200;
export const acpiShutdownTimeoutMs = 60_000;
/** After quit, QEMU flushes disks and exits; after that we kill it. */
export const quitExitTimeoutMs = 10_000;
export const killExitTimeoutMs = 5000;
/** After QEMU exits, how long its QMP socket may take to deliver the last events and close. */
export const qmpDrainAfterExitMs = 1000;

/** Events worth a log line; frequent ones (RTC_CHANGE, NIC_RX_FILTER_CHANGED) are only forwarded. */
const loggedEvents = new Set(["STOP", "RESUME", "SHUTDOWN", "POWERDOWN", "RESET", "GUEST_PANICKED", "DEVICE_DELETED", "BLOCK_JOB_COMPLETED", "BLOCK_JOB_CANCELLED", "BLOCK_JOB_ERROR", "BLOCK_IO_ERROR"]);

export interface RuntimeOptions {
  /** The VM's run directory on this node (holds runtime.json and qemu.log). */
  runDir: string;
  qemuBinary?: string;
  /** Structured log sink (one object per line in the daemon); every entry names the VM. */
  log?: (entry: Record<string, unknown>) => void;
  procRoot?: string;
  /** Defaults to qmpStartTimeoutMs. */
  qmpStartTimeoutMs?: number;
}

export interface VmStatus {
  name: string;
  state: VmRunState;
  pid: number;
  uptimeMs: number | null;
  cpuTimeMs: number | null;
  rssBytes: number | null;
  exit: VmExit | null;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A second QEMU for the same VM would lose the first one's QMP socket and share its disks. */
async function refuseIfRunning(spec: VmSpec, procRoot: string): Promise<void> {
  const pid = await readPidFile(spec.pidFile);
  if (pid === null || !(await processAlive(pid, procRoot))) return;
  const cmdline = await readCmdline(pid, procRoot);
  if (cmdline !== null && cmdlineIsQemuFor(cmdline, spec.uuid)) {
    throw new QemuRuntimeError("already-running", `starting VM ${spec.name}: QEMU already runs for it (pid ${pid}); re-attach instead of starting again`);
  }
}

/** Starts QEMU for `spec` and resolves once QMP answers; a failed start carries QEMU's own output. */
export async function startVm(spec: VmSpec, facts: QemuHostFacts, options: RuntimeOptions): Promise<QemuRuntime> {
  const argv = buildQemuArgv(spec, facts);
  const binary = options.qemuBinary ?? "qemu-system-x86_64";
  await mkdir(options.runDir, { recursive: true, mode: 0o750 });
  await refuseIfRunning(spec, options.procRoot ?? "/proc");
  // Stale files of an earlier run would make us talk to, or report, a process that is gone.
  await Promise.all([rm(spec.qmpSocketPath, { force: true }), rm(spec.pidFile, { force: true })]);
  const record: RuntimeRecord = { name: spec.name, uuid: spec.uuid, pidFile: spec.pidFile, qmpSocketPath: spec.qmpSocketPath, argv: [binary, ...argv] };
  await writeRuntimeRecord(options.runDir, record);
  const log = await openLogForStart(options.runDir, spec.name, new Date());
  let child: ChildProcess;
  let spawnFailed: Promise<Error>;
  let exited: Promise<VmExit>;
  try {
    child = spawn(binary, argv, { detached: true, stdio: ["ignore", log.fd, log.fd] });
    // Listen before the first await: a binary that cannot be run reports an "error" event, and a
    // QEMU that fails fast may exit, while the log is being closed.
    spawnFailed = new Promise((resolve) => child.once("error", resolve));
    exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal, known: true })));
  } finally {
    await log.close();
  }
  const pid = child.pid;
  if (pid === undefined) {
    const err = await spawnFailed;
    throw new QemuRuntimeError("start-failed", `starting VM ${spec.name}: cannot run ${binary}: ${err.message}`, { cause: err });
  }
  child.unref();
  const rt = new QemuRuntime(record, options, pid, { child, exited });
  await rt.waitForQmp(log.path);
  return rt;
}

/** Re-attaches to the QEMU a previous daemon started in `runDir`, after checking it is that VM's. */
export async function attachVm(options: RuntimeOptions): Promise<QemuRuntime> {
  const record = await readRuntimeRecord(options.runDir);
  const what = `re-attaching to VM ${record.name}`;
  const pid = await readPidFile(record.pidFile);
  if (pid === null) throw new QemuRuntimeError("not-running", `${what}: no pid in ${record.pidFile}`);
  const procRoot = options.procRoot ?? "/proc";
  if (!(await processAlive(pid, procRoot))) throw new QemuRuntimeError("not-running", `${what}: process ${pid} from ${record.pidFile} is not running`);
  const cmdline = await readCmdline(pid, procRoot);
  if (cmdline === null || !cmdlineIsQemuFor(cmdline, record.uuid)) {
    throw new QemuRuntimeError("not-qemu", `${what}: process ${pid} is not QEMU for uuid ${record.uuid} (the pid was reused); not touching it`);
  }
  await trimLog(join(options.runDir, qemuLogFileName));
  const rt = new QemuRuntime(record, options, pid, undefined);
  await rt.connectQmp();
  rt.pollForExit();
  return rt;
}

export class QemuRuntime {
  private ctx: VmStateContext = initialVmState;
  private monitor: QmpMonitor | undefined;
  private exitInfo: VmExit | null = null;
  private stopRequested = false;
  private detached = false;
  private readonly exitWaiters = new Set<(exit: VmExit) => void>();
  private readonly stateListeners = new Set<(state: VmRunState) => void>();
  private readonly eventListeners = new Set<(event: QmpEvent) => void>();

  /** Construct through startVm or attachVm. */
  constructor(
    private readonly record: RuntimeRecord,
    private readonly options: RuntimeOptions,
    readonly pid: number,
    spawned: { child: ChildProcess; exited: Promise<VmExit> } | undefined,
  ) {
    void spawned?.exited.then((exit) => this.settleExit(exit));
    spawned?.child.on("error", (err) => this.log({ msg: "qemu process error", error: err.message }));
  }

  get name(): string {
    return this.record.name;
  }

  get state(): VmRunState {
    return this.ctx.state;
  }

  get exit(): VmExit | null {
    return this.exitInfo;
  }

  /** Called on every change of state; returns the unsubscribe function. */
  onStateChange(fn: (state: VmRunState) => void): () => void {
    this.stateListeners.add(fn);
    return () => this.stateListeners.delete(fn);
  }

  /** Every QMP event of this VM (DEVICE_DELETED, BLOCK_JOB_*, …); returns the unsubscribe function. */
  onEvent(fn: (event: QmpEvent) => void): () => void {
    this.eventListeners.add(fn);
    return () => this.eventListeners.delete(fn);
  }

  private log(entry: Record<string, unknown>): void {
    this.options.log?.({ vm: this.record.name, pid: this.pid, ...entry });
  }

  private apply(input: VmStateInput): void {
    const before = this.ctx.state;
    this.ctx = reduceVmState(this.ctx, input);
    if (this.ctx.state === before) return;
    this.log({ msg: "vm state", from: before, to: this.ctx.state, cause: input.type === "event" ? input.event : input.type });
    for (const fn of [...this.stateListeners]) fn(this.ctx.state);
  }

  /**
   * The exit status can arrive before QEMU's last QMP events (SHUTDOWN and its reason) have been
   * read from the socket; the socket's end comes after all of them, so wait for it (bounded).
   */
  private settleExit(exit: VmExit): void {
    const monitor = this.monitor;
    if (!monitor || monitor.closed) return this.onExit(exit);
    const timer = setTimeout(() => this.onExit(exit), qmpDrainAfterExitMs);
    monitor.onClose(() => {
      clearTimeout(timer);
      this.onExit(exit);
    });
  }

  private onExit(exit: VmExit): void {
    if (this.exitInfo) return;
    this.exitInfo = exit;
    this.apply({ type: "exit", exit, stopRequested: this.stopRequested });
    this.log({ msg: "qemu exited", code: exit.code, signal: exit.signal, known: exit.known });
    for (const fn of [...this.exitWaiters]) fn(exit);
    this.exitWaiters.clear();
  }

  /** Polls until QMP answers; fails with QEMU's own output when it exits first or never answers. */
  async waitForQmp(logPath: string): Promise<void> {
    const startTimeoutMs = this.options.qmpStartTimeoutMs ?? qmpStartTimeoutMs;
    const deadline = performance.now() + startTimeoutMs;
    for (;;) {
      if (this.exitInfo) {
        const why = this.exitInfo.signal ? `was killed by ${this.exitInfo.signal}` : `exited with code ${this.exitInfo.code}`;
        throw new QemuRuntimeError("start-failed", `starting VM ${this.name}: QEMU ${why}: ${(await lastStartOutput(logPath)) || "(no output)"}`);
      }
      try {
        await this.connectQmp();
        break;
      } catch (err) {
        if (performance.now() > deadline) {
          this.killGroup();
          throw new QemuRuntimeError("start-timeout", `starting VM ${this.name}: QMP did not answer within ${startTimeoutMs} ms (${(err as Error).message}); QEMU was killed. Its output: ${(await lastStartOutput(logPath)) || "(none)"}`, { cause: err });
        }
        await sleep(qmpConnectPollMs);
      }
    }
    const pidInFile = await readPidFile(this.record.pidFile);
    if (pidInFile !== this.pid) this.log({ msg: "pidfile disagrees with the spawned pid", pidFile: this.record.pidFile, pidInFile });
  }

  /** Connects QMP, subscribes to events and reads the current run state. */
  async connectQmp(): Promise<void> {
    const monitor = await QmpMonitor.connect(this.record.qmpSocketPath, { name: `QMP of VM ${this.name}`, connectTimeoutMs: qmpHandshakeTimeoutMs });
    this.monitor = monitor;
    try {
      await this.watch(monitor);
    } catch (err) {
      monitor.close();
      throw err;
    }
  }

  private async watch(monitor: QmpMonitor): Promise<void> {
    monitor.subscribe((e) => {
      if (loggedEvents.has(e.event)) this.log({ msg: "qmp event", event: e.event, data: e.data });
      this.apply({ type: "event", event: e.event, data: e.data });
      for (const fn of [...this.eventListeners]) fn(e);
    });
    monitor.onClose((err) => {
      if (!this.detached) this.log({ msg: "qmp closed", reason: err.message });
    });
    const status = await qmp.queryStatus(monitor);
    this.apply({ type: "status", status: status.status });
  }

  /** A re-attached QEMU is not our child: its exit is seen by polling /proc. */
  pollForExit(): void {
    const tick = async (): Promise<void> => {
      if (this.detached || this.exitInfo) return;
      if (await processAlive(this.pid, this.options.procRoot)) setTimeout(() => void tick(), exitPollMs).unref();
      else this.onExit({ code: null, signal: null, known: false });
    };
    void tick();
  }

  private qmp(what: string): QmpMonitor {
    if (this.exitInfo) throw new QemuRuntimeError("not-running", `${what} VM ${this.name}: QEMU has exited`);
    if (!this.monitor || this.monitor.closed) throw new QemuRuntimeError("qmp", `${what} VM ${this.name}: no QMP connection`);
    return this.monitor;
  }

  async pause(): Promise<void> {
    await qmp.stop(this.qmp("pausing"));
  }

  async resume(): Promise<void> {
    await qmp.cont(this.qmp("resuming"));
  }

  async reset(): Promise<void> {
    await qmp.systemReset(this.qmp("resetting"));
  }

  /** Grows disk `diskId` while the guest runs (disk-grow.ts), from the argv this QEMU was started with. */
  async growDisk(diskId: string, target: GrowTarget): Promise<GrowResult> {
    const result = await growDiskOnline(this.qmp(`growing disk ${diskId} of`), this.record.argv.slice(1), diskId, target);
    if (result.outcome === "grown") this.log({ msg: "disk grown online", disk: diskId, sizeBytes: target.sizeBytes, leftovers: result.leftovers });
    return result;
  }

  /** Waits for QEMU to exit; null when it is still running after timeoutMs. */
  waitForExit(timeoutMs: number): Promise<VmExit | null> {
    if (this.exitInfo) return Promise.resolve(this.exitInfo);
    return new Promise((resolve) => {
      const done = (exit: VmExit | null): void => {
        clearTimeout(timer);
        this.exitWaiters.delete(done);
        resolve(exit);
      };
      const timer = setTimeout(() => done(null), timeoutMs);
      this.exitWaiters.add(done);
    });
  }

  /** Presses the ACPI power button; if the guest has not powered off within timeoutMs, stops it by force. */
  async shutdown(timeoutMs = acpiShutdownTimeoutMs): Promise<"acpi" | "forced"> {
    await qmp.systemPowerdown(this.qmp("shutting down"));
    if (await this.waitForExit(timeoutMs)) return "acpi";
    this.log({ msg: "acpi shutdown timed out; forcing", timeoutMs });
    await this.forceStop();
    return "forced";
  }

  /** quit over QMP; SIGKILL to QEMU's process group when it does not exit in time. */
  async forceStop(): Promise<VmExit> {
    if (this.exitInfo) return this.exitInfo;
    this.stopRequested = true;
    if (this.monitor && !this.monitor.closed) {
      await qmp.quit(this.monitor).catch((err: unknown) => this.log({ msg: "quit failed; killing", error: (err as Error).message }));
    }
    const quitExit = await this.waitForExit(quitExitTimeoutMs);
    if (quitExit) return quitExit;
    this.killGroup();
    const killExit = await this.waitForExit(killExitTimeoutMs);
    if (killExit) return killExit;
    throw new QemuRuntimeError("stop-timeout", `stopping VM ${this.name}: QEMU (pid ${this.pid}) still runs ${killExitTimeoutMs} ms after SIGKILL (stuck in the kernel?)`);
  }

  /** QEMU leads its own session and process group (spawned detached), so the group is exactly its processes. */
  private killGroup(): void {
    this.stopRequested = true;
    // kill(-1) signals every process we may signal, kill(-0) our own group: never let a bad pid through.
    if (!Number.isInteger(this.pid) || this.pid <= 1) throw new QemuRuntimeError("not-running", `killing VM ${this.name}: refusing to signal pid ${this.pid}`);
    for (const target of [-this.pid, this.pid]) {
      try {
        process.kill(target, "SIGKILL");
        return;
      } catch {
        // No such group (e.g. re-attached to a QEMU started otherwise): try the pid itself.
      }
    }
  }

  async status(): Promise<VmStatus> {
    const base = { name: this.name, state: this.state, pid: this.pid, exit: this.exitInfo };
    const procRoot = this.options.procRoot ?? "/proc";
    const stat = this.exitInfo ? null : await readProcStat(this.pid, procRoot);
    if (!stat) return { ...base, uptimeMs: null, cpuTimeMs: null, rssBytes: null };
    const hostUptimeMs = parseProcUptimeMs(await readFile(`${procRoot}/uptime`, "utf8"));
    return { ...base, uptimeMs: Math.max(0, hostUptimeMs - stat.startTimeMs), cpuTimeMs: stat.cpuTimeMs, rssBytes: stat.rssBytes };
  }

  /** Lets go of QEMU without stopping it (what a daemon restart does): QMP closes, tracking ends. */
  detach(): void {
    this.detached = true;
    this.monitor?.close();
  }
}
