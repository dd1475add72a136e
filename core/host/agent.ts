// The host agent of a node: level-triggered reconciliation of the VMs assigned to this node.
// Every agentTickMs, on poke, and within changeCheckMs of a change to this node's VM records
// (so a StartVm does not wait for the next tick) it reads the local replica, compares each VM's desired state
// with the QEMU runtime it holds, starts, pauses, resumes or stops it, and reports status
// changes through vm.report_status; a running VM whose volume images grew gets its disks grown
// in place (vm-grow.ts). After a daemon restart it re-attaches to the guests still
// running (from their run directories); stopping the agent lets go of guests without killing them.
import { mkdir, open, readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../raft/types.ts";
import type { Replica } from "../state/replica.ts";
import { isVolumeDisk, type PowerAction, type VmRecord, type VmStatusRecord } from "../vm/vm-model.ts";
import { listNodeEndpoints } from "../cluster/node-module.ts";
import { nbdSocketPath } from "../../storage/node/layout.ts";
import { getImageByName } from "../../storage/volume/storage-queries.ts";
import { keptDiskVmIds, listVms, listVmStatus } from "../vm/vm-module.ts";
import { gatherHostFacts, runBounded } from "./facts.ts";
import { checkKvm, hostKvmProbeDeps } from "./kvm-probe.ts";
import { hostNetRunner, listBridges, type NetRunner } from "./net/bridge.ts";
import { planTaps } from "./net/tap.ts";
import { gatherQemuHostFacts } from "./qemu/host-facts.ts";
import { attachVm, startVm } from "./qemu/runtime.ts";
import type { QemuRuntime, VmRunState } from "./qemu/runtime.ts";
import type { QemuHostFacts } from "./qemu/spec.ts";
import { pathIsoResolver, possibleTapNames, prepareVmDevices, releaseTaps, VmPrepareError, type IsoResolver } from "./vm-prepare.ts";
import { diskPath, specFromRecord, vmPaths } from "./vm-spec.ts";
import { disksToGrow, growDisks, newGrowState, shouldGrow, type GrowState } from "./vm-grow.ts";
import { resolveVolumeDevices, type VolumeDevices } from "./vm-volumes.ts";

export { diskPath, specFromRecord, vmPaths, type VmPaths } from "./vm-spec.ts";
import type { GuestProcess } from "./vm-stats.ts";

export const agentTickMs = 250;
/** How often the applied index is compared; on a change, a cheap fingerprint of this node's VM rows decides whether to tick now. */
export const changeCheckMs = 10;
/** How often the node's bridges are listed again, so a bridge an admin adds is offered without a restart. */
export const bridgesRefreshMs = 30_000;
/** After a failed gathering of host facts, the next try. */
export const factsRetryMs = 5000;
/** On stop, how long operations under way (a start, an ACPI shutdown) may take to settle. */
export const agentStopWaitMs = 20_000;
export const qemuImgTimeoutMs = 30_000;
const mib = 1024 * 1024;

export type AgentAction = "none" | "start" | "start-paused" | "pause" | "resume" | "shutdown" | "force-stop" | "reset";

export interface Observed {
  /** A QEMU process of the VM is running (held by this agent). */
  alive: boolean;
  state: VmRunState | null;
  /** The desiredIndex last acted on: a guest that stopped by itself is not started again for the same request. */
  actedIndex: number;
}

/** What to do about one VM (pure). */
export function decideAction(vm: Pick<VmRecord, "desiredState" | "stopMode" | "desiredIndex">, o: Observed): AgentAction {
  const fresh = o.actedIndex < vm.desiredIndex;
  switch (vm.desiredState) {
    case "running":
      if (!o.alive) return fresh ? "start" : "none";
      return o.state === "paused" ? "resume" : "none";
    case "paused":
      if (!o.alive) return fresh ? "start-paused" : "none";
      return o.state === "running" ? "pause" : "none";
    case "stopped":
      if (!o.alive) return "none";
      return vm.stopMode === "force" ? "force-stop" : "shutdown";
  }
}

/** The status word reported for a VM: the runtime's, with every clean exit called "stopped". */
export function reportedState(rt: QemuRuntime | undefined, startError: string | null, busy: boolean): string {
  if (startError !== null && (!rt || rt.exit)) return "failed";
  if (!rt) return busy ? "starting" : "stopped";
  if (rt.exit) return rt.state === "crashed" ? "crashed" : "stopped";
  return rt.state;
}

const vmIdPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const vmFingerprintSql = "SELECT count(*) AS n, coalesce(sum(desired_index), 0) AS d, coalesce(sum(spec_index), 0) AS s, coalesce(sum(action_index), 0) AS a FROM vms WHERE node_id = ?";

export interface HostAgentOptions {
  replica: Replica;
  nodeId: number;
  dataDir: string;
  logger: Logger;
  qemuBinary?: string;
  tickMs?: number;
  nowMs?: () => number;
  /** Maps a VM's CD-ROM reference to an ISO path on this node (default: the reference is the path). */
  resolveIso?: IsoResolver;
  /** Runs iproute2 for taps and bridges (default: the real `ip`/`bridge`). */
  netRunner?: NetRunner;
  /**
   * Whether this node's NBD server exports "<volume>/<image>" yet (the storage node adds an
   * export once it has made the image's file); a start waits for it, bounded by
   * volumeExportWaitMs. Absent: the agent does not wait.
   */
  volumeExportReady?: (exportName: string) => boolean;
}

/** How long a start waits for the node to export a freshly created volume image. */
export const volumeExportWaitMs = 10_000;
const volumeExportPollMs = 100;

interface Held {
  rt?: QemuRuntime;
  startedAtMs: number | null;
  startError: string | null;
  busy: boolean;
  actedIndex?: number;
  /** The VM's specIndex the running QEMU was started from. */
  specIndex: number;
  /** The power action request last carried out, what was done and when. */
  actionIndex: number;
  lastAction: string | null;
  lastActionAtMs: number | null;
  /** Taps made for the QEMU (or found with a re-attached one), removed once it has exited. */
  taps: string[];
  /** Online growth of its volume disks (vm-grow.ts); reset with each start of QEMU. */
  grow: GrowState;
}

/** What a reboot or reset request comes to: no guest agent channel yet to ask the guest for a reboot, so both reset. */
export function powerActionDone(action: PowerAction): string {
  return action === "reboot" ? "reboot-reset" : "reset";
}

export class HostAgent {
  private facts: QemuHostFacts | undefined;
  private gathered: AgentFacts | undefined;
  private factsTriedAtMs = -Infinity;
  private bridgesListedAtMs = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  private changeTimer: NodeJS.Timeout | undefined;
  private seenAppliedIndex = -1;
  private seenFingerprint = "";
  private ticking: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private readonly held = new Map<string, Held>();
  private readonly ops = new Set<Promise<void>>();
  private readonly reported = new Map<string, string>();

  private readonly net: NetRunner;

  constructor(private readonly opts: HostAgentOptions) {
    this.net = opts.netRunner ?? hostNetRunner();
  }

  private now(): number {
    return (this.opts.nowMs ?? Date.now)();
  }

  start(): void {
    this.timer = setInterval(() => this.poke(), this.opts.tickMs ?? agentTickMs);
    this.changeTimer = setInterval(() => this.checkForChange(), changeCheckMs);
    this.poke();
  }

  /** Pokes when a VM of this node was created, deleted, or had its desired state, spec or power action changed. */
  private checkForChange(): void {
    const sm = this.opts.replica.stateMachine;
    if (sm.appliedIndex === this.seenAppliedIndex) return;
    this.seenAppliedIndex = sm.appliedIndex;
    const fingerprint = sm.read((db) => JSON.stringify(db.prepare(vmFingerprintSql).get(this.opts.nodeId))).value;
    if (fingerprint === this.seenFingerprint) return;
    this.seenFingerprint = fingerprint;
    this.poke();
  }

  /** Runs a reconciliation now (or right after the one under way). */
  poke(): void {
    if (this.stopped) return;
    if (this.ticking) {
      this.again = true;
      return;
    }
    this.ticking = this.tick()
      .catch((err: unknown) => this.opts.logger.warn("host agent: reconciliation failed", { error: (err as Error).message }))
      .finally(() => {
        this.ticking = undefined;
        if (this.again) {
          this.again = false;
          this.poke();
        }
      });
  }

  /** Stops reconciling and lets go of every guest without stopping it. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearInterval(this.changeTimer);
    const settle = Promise.all([this.ticking, ...this.ops]);
    await Promise.race([settle, new Promise((r) => setTimeout(r, agentStopWaitMs).unref())]);
    for (const h of this.held.values()) h.rt?.detach();
    this.held.clear();
  }

  private async tick(): Promise<void> {
    if (!this.facts && !(await this.gatherFacts())) return;
    await this.refreshBridges();
    const { vms, status, kept } = this.opts.replica.stateMachine.read((db) => ({ vms: listVms(db, this.opts.nodeId), status: listVmStatus(db), kept: keptDiskVmIds(db, this.opts.nodeId) })).value;
    const ids = new Set(vms.map((v) => v.id));
    await this.cleanUpRemoved(ids, kept);
    for (const vm of vms) {
      const h = await this.heldFor(vm, status.get(vm.id));
      if (!h.busy && h.rt?.exit && h.taps.length > 0) await this.releaseTapsOf(vm.name, h);
      if (!h.busy) this.act(vm, h);
      if (!h.busy) this.growIfLarger(vm, h);
      await this.report(vm, h);
    }
  }

  /** Re-reports the node's bridges when they changed (an admin added one), at most every bridgesRefreshMs. */
  private async refreshBridges(): Promise<void> {
    if (!this.gathered || this.now() - this.bridgesListedAtMs < bridgesRefreshMs) return;
    this.bridgesListedAtMs = this.now();
    const bridges = await listBridges(this.net).catch(() => null);
    if (bridges === null || JSON.stringify(bridges) === JSON.stringify(this.gathered.report.bridges)) return;
    const report = { ...this.gathered.report, bridges };
    const r = await this.opts.replica.execute({ type: "ext", name: "vm.report_host", payload: report }).catch((err: unknown) => ({ ok: false as const, message: (err as Error).message }));
    if (!r.ok) return;
    this.gathered.report = report;
    this.opts.logger.info("host agent: bridges reported", { bridges });
  }

  private async releaseTapsOf(vmName: string, h: Pick<Held, "taps">): Promise<void> {
    const errors = await releaseTaps(this.net, h.taps);
    if (errors.length > 0) this.opts.logger.warn("host agent: removing taps failed", { vm: vmName, errors });
    h.taps = [];
  }

  /** Gathers this host's facts once (retried after factsRetryMs), then reports them until the report is committed. */
  private async gatherFacts(): Promise<boolean> {
    if (!this.gathered) {
      if (this.now() - this.factsTriedAtMs < factsRetryMs) return false;
      this.factsTriedAtMs = this.now();
      try {
        this.gathered = await gatherAgentFacts(this.opts.nodeId, this.opts.qemuBinary, join(this.opts.dataDir, "images"), this.net, this.opts.logger);
      } catch (err) {
        this.opts.logger.warn("host agent: gathering host facts failed; retrying", { error: (err as Error).message, retryMs: factsRetryMs });
        return false;
      }
    }
    const r = await this.opts.replica.execute({ type: "ext", name: "vm.report_host", payload: this.gathered.report }).catch((err: unknown) => ({ ok: false as const, code: "unavailable", message: (err as Error).message }));
    if (!r.ok) {
      this.opts.logger.debug("host agent: host report not committed yet", { error: r.message });
      return false;
    }
    this.facts = this.gathered.facts;
    this.bridgesListedAtMs = this.now();
    this.opts.logger.info("host agent: host facts reported", { qemu: this.facts.qemuVersion, accelerators: this.facts.accelerators, kvm: this.gathered.kvmReason });
    return true;
  }

  /** The agent's hold on a VM; on first sight after a start, re-attaches to a QEMU still running. */
  private async heldFor(vm: VmRecord, status: VmStatusRecord | undefined): Promise<Held> {
    let h = this.held.get(vm.id);
    if (h) return h;
    h = {
      startedAtMs: null, startError: null, busy: false, actedIndex: status?.actedIndex ?? 0, specIndex: status?.specIndex ?? 0,
      actionIndex: status?.actionIndex ?? 0, lastAction: status?.lastAction ?? null, lastActionAtMs: status?.lastActionAtMs ?? null, taps: [], grow: newGrowState(),
    };
    this.held.set(vm.id, h);
    const { runDir } = vmPaths(this.opts.dataDir, vm.id);
    if (await stat(join(runDir, "runtime.json")).then(() => true, () => false)) {
      try {
        h.rt = await attachVm({ runDir, qemuBinary: this.opts.qemuBinary, log: (e) => this.opts.logger.info("qemu", e) });
        const st = await h.rt.status();
        h.startedAtMs = st.uptimeMs === null ? null : this.now() - st.uptimeMs;
        h.taps = [...planTaps(vm.id, vm.spec.nics).values()].map((t) => t.name);
        this.watch(h.rt);
        this.opts.logger.info("host agent: re-attached", { vm: vm.name, pid: h.rt.pid });
      } catch (err) {
        this.opts.logger.info("host agent: nothing to re-attach", { vm: vm.name, reason: (err as Error).message });
      }
    }
    return h;
  }

  /** The QEMU processes this agent holds and their guests' memory, for the stats sampler (vm-stats.ts). */
  runningGuests(): GuestProcess[] {
    const vms = this.opts.replica.stateMachine.read((db) => listVms(db, this.opts.nodeId)).value;
    return vms.flatMap((vm) => {
      const rt = this.held.get(vm.id)?.rt;
      return rt && rt.exit === null ? [{ vmId: vm.id, pid: rt.pid, guestMemoryMiB: vm.spec.memoryMiB }] : [];
    });
  }

  private watch(rt: QemuRuntime): void {
    rt.onStateChange(() => this.poke());
  }

  private act(vm: VmRecord, h: Held): void {
    const alive = h.rt !== undefined && h.rt.exit === null;
    let action: AgentAction = decideAction(vm, { alive, state: h.rt?.state ?? null, actedIndex: h.actedIndex ?? 0 });
    // A reboot or reset requested before the VM last started (or while it was down) is moot.
    if (action === "start" || action === "start-paused" || (!alive && vm.actionIndex > h.actionIndex)) h.actionIndex = vm.actionIndex;
    if (action === "none" && alive && vm.action !== null && vm.actionIndex > h.actionIndex) action = "reset";
    if (action === "none") return;
    h.busy = true;
    if (action === "start" || action === "start-paused") {
      h.actedIndex = vm.desiredIndex;
      h.specIndex = vm.specIndex;
      h.startError = null;
    }
    if (action === "reset") {
      h.actionIndex = vm.actionIndex;
      h.lastAction = powerActionDone(vm.action!);
      h.lastActionAtMs = this.now();
    }
    const op = this.run(vm, h, action)
      .catch((err: unknown) => {
        const message = (err as Error).message;
        this.opts.logger.warn("host agent: VM operation failed", { vm: vm.name, action, error: message });
        if (action === "start" || action === "start-paused") h.startError = message;
      })
      .finally(() => {
        h.busy = false;
        this.ops.delete(op);
        this.poke();
      });
    this.ops.add(op);
  }

  /** A running VM whose volume images grew in the replicated state: grow its disks in QEMU (vm-grow.ts). */
  private growIfLarger(vm: VmRecord, h: Held): void {
    const rt = h.rt;
    if (!rt || rt.exit || (rt.state !== "running" && rt.state !== "paused")) return;
    const jobs = this.opts.replica.stateMachine.read((db) => disksToGrow(vm, (volume, image) => getImageByName(db, volume, image), h.grow.knownBytes)).value;
    if (!shouldGrow(h.grow, jobs, this.now())) return;
    // A start replaces h.grow while this runs: the op keeps to the state of its own QEMU.
    const g = h.grow;
    g.running = true;
    const op = growDisks(vm.name, rt, g, jobs, () => this.now())
      .then((grown) => {
        if (grown) this.opts.logger.info("host agent: disks grown online", { vm: vm.name, disks: jobs.map((j) => ({ disk: j.diskId, image: j.image, sizeBytes: j.target.sizeBytes })) });
        if (g.error !== null) this.opts.logger.warn("host agent: growing a disk online failed", { vm: vm.name, error: g.error });
      })
      .catch((err: unknown) => this.opts.logger.warn("host agent: growing a disk online failed", { vm: vm.name, error: (err as Error).message }))
      .finally(() => {
        g.running = false;
        this.ops.delete(op);
        if (g.error !== null) this.poke();
      });
    this.ops.add(op);
  }

  private async run(vm: VmRecord, h: Held, action: AgentAction): Promise<void> {
    const rt = h.rt;
    switch (action) {
      case "start":
      case "start-paused":
        h.grow = newGrowState();
        h.rt = await this.startQemu(vm, h);
        h.startedAtMs = this.now();
        this.watch(h.rt);
        if (action === "start-paused") await h.rt.pause();
        return;
      case "pause":
        return rt?.pause();
      case "resume":
        return rt?.resume();
      case "shutdown":
        await rt?.shutdown();
        return;
      case "force-stop":
        await rt?.forceStop();
        return;
      case "reset":
        return rt?.reset();
      case "none":
        return;
    }
  }

  /** Sets up the VM's devices on the node, then QEMU; taps made for a QEMU that did not start are removed. */
  private async startQemu(vm: VmRecord, h: Held): Promise<QemuRuntime> {
    const paths = vmPaths(this.opts.dataDir, vm.id);
    await mkdir(paths.imagesDir, { recursive: true, mode: 0o750 });
    if (h.taps.length > 0) await this.releaseTapsOf(vm.name, h);
    // Volume images first: a VM on a node without a copy fails before anything is set up.
    const volumes = this.resolveVolumes(vm);
    await this.waitForExports(vm, volumes);
    const { resolved, taps } = await prepareVmDevices(vm, paths, { net: this.net, resolveIso: this.opts.resolveIso ?? pathIsoResolver, ovmfCodePath: this.facts!.ovmfCodePath });
    h.taps = taps;
    try {
      const spec = specFromRecord(vm, paths, this.facts!, { ...resolved, cdromExport: volumes.cdromExport, volumeDisks: volumes.disks });
      for (const d of vm.spec.disks) if (!isVolumeDisk(d)) await ensureDiskImage(diskPath(paths, d), d.format, d.sizeMiB);
      return await startVm(spec, this.facts!, { runDir: paths.runDir, qemuBinary: this.opts.qemuBinary, log: (e) => this.opts.logger.info("qemu", e) });
    } catch (err) {
      await this.releaseTapsOf(vm.name, h);
      throw err;
    }
  }

  /** Waits (bounded) until this node exports every volume image the VM uses; a timeout names the image. */
  private async waitForExports(vm: VmRecord, volumes: VolumeDevices): Promise<void> {
    const ready = this.opts.volumeExportReady;
    if (!ready) return;
    const names = [...volumes.disks.values(), ...(volumes.cdromExport ? [volumes.cdromExport] : [])].map((e) => e.exportName);
    const deadline = (this.opts.nowMs ?? Date.now)() + volumeExportWaitMs;
    for (const name of names) {
      while (!ready(name)) {
        if ((this.opts.nowMs ?? Date.now)() > deadline) throw new VmPrepareError(`starting VM ${vm.name}: this node does not export image ${name} after ${volumeExportWaitMs} ms (is its brick file made? see the node's log)`);
        await new Promise((r) => setTimeout(r, volumeExportPollMs));
      }
    }
  }

  /** The NBD exports on this node of the VM's volume disks and library CD-ROM (from the local replica). */
  private resolveVolumes(vm: VmRecord): VolumeDevices {
    return this.opts.replica.stateMachine.read((db) => {
      const names = new Map(listNodeEndpoints(db).map((n) => [n.nodeId, n.name]));
      return resolveVolumeDevices(vm, this.opts.nodeId, nbdSocketPath(this.opts.dataDir), {
        image: (volume, image) => getImageByName(db, volume, image),
        nodeName: (id) => names.get(id) ?? String(id),
      });
    }).value;
  }

  private async report(vm: VmRecord, h: Held): Promise<void> {
    const rt = h.rt;
    const alive = rt !== undefined && rt.exit === null;
    const state = reportedState(rt, h.startError, h.busy && !alive);
    const payload = {
      vmId: vm.id, nodeId: this.opts.nodeId, state, pid: alive ? rt.pid : null, startedAtMs: alive ? h.startedAtMs : null,
      error: state === "failed" ? h.startError : alive ? h.grow.error : null,
      actedIndex: h.actedIndex ?? 0, specIndex: h.specIndex, actionIndex: h.actionIndex, lastAction: h.lastAction, lastActionAtMs: h.lastActionAtMs,
    };
    const key = JSON.stringify([payload.state, payload.pid, payload.error, payload.actedIndex, payload.specIndex, payload.actionIndex, payload.lastActionAtMs]);
    if (this.reported.get(vm.id) === key) return;
    const r = await this.opts.replica.execute({ type: "ext", name: "vm.report_status", payload });
    if (r.ok) this.reported.set(vm.id, key);
    else this.opts.logger.warn("host agent: status report refused", { vm: vm.name, error: r.message });
  }

  /**
   * VMs deleted (or moved away): stop what still runs, remove run dir and images (unless deleted
   * keeping its disks). Only the node-local images directory goes: volume images belong to their volume.
   */
  private async cleanUpRemoved(ids: ReadonlySet<string>, kept: ReadonlySet<string>): Promise<void> {
    const runRoot = join(this.opts.dataDir, "run");
    // Only VM run directories: other files of the node (such as a storage socket) may share run/.
    const dirs = (await readdir(runRoot).catch(() => [] as string[])).filter((d) => vmIdPattern.test(d));
    for (const id of new Set([...this.held.keys(), ...dirs])) {
      if (ids.has(id)) continue;
      const h = this.held.get(id);
      if (h?.busy) continue;
      let rt = h?.rt;
      if (!rt && dirs.includes(id)) rt = await attachVm({ runDir: join(runRoot, id), qemuBinary: this.opts.qemuBinary }).catch(() => undefined);
      if (rt && rt.exit === null) await rt.forceStop();
      rt?.detach();
      // Without a record the NICs are unknown: try every tap name the VM could have had.
      if (h === undefined || h.taps.length > 0) await this.releaseTapsOf(id, { taps: h?.taps.length ? h.taps : possibleTapNames(id) });
      const paths = vmPaths(this.opts.dataDir, id);
      await rm(paths.runDir, { recursive: true, force: true });
      if (!kept.has(id)) await rm(paths.imagesDir, { recursive: true, force: true });
      this.held.delete(id);
      this.reported.delete(id);
      this.opts.logger.info("host agent: removed VM files", { vm: id });
    }
  }
}

interface AgentFacts {
  facts: QemuHostFacts;
  kvmReason: string;
  report: { nodeId: number; memoryMiB: number; cpus: number; machineTypes: string[]; accelerators: string[]; imagesRoot: string; bridges: string[] };
}

/** QEMU facts with the accelerator from the (cached) KVM probe, and the capacity report of this node. */
async function gatherAgentFacts(nodeId: number, qemuBinary: string | undefined, imagesRoot: string, net: NetRunner, logger: Logger): Promise<AgentFacts> {
  const host = await gatherHostFacts();
  const qemu = host.qemu.find((q) => q.name === "qemu-system-x86_64");
  const kvm = await checkKvm(hostKvmProbeDeps({ kernelRelease: host.kernel.release }), { qemuPath: qemu?.path ?? null, qemuVersion: qemu?.version ?? null, kernelRelease: host.kernel.release });
  const facts = await gatherQemuHostFacts({ kvmUsable: kvm.usable, qemuBinary });
  // A node whose bridges cannot be listed still runs user-mode NICs; it just offers no bridge.
  const bridges = await listBridges(net).catch((err: unknown) => {
    logger.warn("host agent: listing bridges failed; reporting none", { error: (err as Error).message });
    return [];
  });
  const report = { nodeId, memoryMiB: Math.floor(host.memory.totalBytes / mib), cpus: host.cpu.count, machineTypes: facts.machineTypes, accelerators: facts.accelerators, imagesRoot, bridges };
  return { facts, kvmReason: kvm.reason, report };
}

/** Creates a missing disk image: raw as a sparse file, qcow2 with qemu-img. An existing one is kept. */
export async function ensureDiskImage(path: string, format: "raw" | "qcow2", sizeMiB: number): Promise<void> {
  if (await stat(path).then(() => true, () => false)) return;
  if (format === "raw") {
    const fh = await open(path, "wx", 0o640);
    try {
      await fh.truncate(sizeMiB * mib);
    } finally {
      await fh.close();
    }
    return;
  }
  const r = await runBounded("qemu-img", ["create", "-q", "-f", "qcow2", path, `${sizeMiB}M`], qemuImgTimeoutMs);
  if (r.code !== 0) throw new Error(`creating disk image ${path}: qemu-img ${r.timedOut ? `timed out after ${qemuImgTimeoutMs} ms` : r.spawnError ?? r.output.slice(0, 500)}`);
}
