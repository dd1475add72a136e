// VmService: create, list, inspect and drive the run state of VMs. Mutations only change the
// replicated record (desired state); the host agent of the assigned node does the work and
// reports status, which list and get return. Placement (least-loaded node that fits by memory)
// is chosen here, by the proposer — a node named in the request, and only nodes holding a copy of
// every volume disk — and re-checked by the apply. List and get add the live
// figures (CPU, memory, uptime) that the VMs' nodes keep outside Raft (core/host/vm-stats.ts).
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ApiError, checkResult } from "../api/server/errors.ts";
import { defineService, type HandlerContext, type RegisteredService } from "../api/server/service.ts";
import { check, intBetween, invalid, matches, noFields } from "../api/server/validation.ts";
import { VmDesiredState, VmService, type CreateVmRequest, type DeleteVmRequest, type UpdateVmRequest, type VmConfig, type VmSchema } from "../api/gen/trivet/v1/vm_pb.ts";
import { listNodeEndpoints } from "../cluster/node-module.ts";
import { deviceInfo, deviceSpecOf, deviceUpdateOf, disksOf } from "./vm-config.ts";
import { placementRefused, volumeImagesOf } from "./vm-placement.ts";
import { volumeImageName } from "./vm-volumes.ts";
import { isVolumeDisk, pinnedMachinePattern, placeVm, vmDescriptionCharsMax, vmDiskSizeMiBMax, vmDisksMax, vmMemoryMiBMax, vmMemoryMiBMin, vmNamePattern, vmNicsMax, vmVcpusMax } from "./vm-model.ts";
import type { DesiredState, PowerAction, StopMode, VmHostRecord, VmLocalDiskRecord, VmRecord, VmStatusRecord } from "./vm-model.ts";
import { assignedMemoryMiB, listVmHosts, listVms, listVmStatus } from "./vm-module.ts";
import type { VmLiveStats } from "../host/vm-stats.ts";

export interface VmServiceOptions {
  /** The latest figures of the VMs on these nodes, by VM id (nodes that do not answer are left out). */
  liveStats?: (nodeIds: number[]) => Promise<Map<string, VmLiveStats>>;
}

function liveFields(live: VmLiveStats | undefined) {
  if (!live) return { statsKnown: false };
  return {
    statsKnown: true, cpuPercent: live.cpuPercent, memoryRssBytes: BigInt(live.memoryRssBytes), guestMemoryBytes: BigInt(live.guestMemoryBytes),
    uptimeMs: BigInt(live.uptimeMs), statsSampledAtMs: BigInt(live.sampledAtMs),
  };
}

/** Figures only for VMs whose QEMU runs: a sample of a stopped VM would be stale. */
async function withLive(opts: VmServiceOptions, vms: VmRecord[], status: Map<string, VmStatusRecord>): Promise<Map<string, VmLiveStats>> {
  const running = vms.filter((v) => ["running", "paused"].includes(status.get(v.id)?.state ?? ""));
  if (!opts.liveStats || running.length === 0) return new Map();
  return opts.liveStats(running.map((v) => v.nodeId));
}

/** The area is "vm", the one rbac.ts lets an Operator change. */
export const vmPermissions = { read: "vm.read", operate: "vm.operate", manage: "vm.manage" } as const;

const desiredOf: Record<DesiredState, VmDesiredState> = { running: VmDesiredState.RUNNING, stopped: VmDesiredState.STOPPED, paused: VmDesiredState.PAUSED };
const nameRule = matches(vmNamePattern, "must be a lower-case DNS label of 1 to 63 characters");

function vmMessage(v: VmRecord, status: VmStatusRecord | undefined, nodeNames: Map<number, string>, live?: VmLiveStats): MessageInitShape<typeof VmSchema> {
  return {
    id: v.id, name: v.name, nodeId: BigInt(v.nodeId), nodeName: nodeNames.get(v.nodeId) ?? "", desiredState: desiredOf[v.desiredState],
    vcpus: v.spec.vcpus, memoryMib: BigInt(v.spec.memoryMiB), machineType: v.spec.machineType, ...deviceInfo(v),
    createdAtMs: BigInt(v.createdAtMs), description: v.description, pendingRestart: v.pendingFields.length > 0, pendingFields: v.pendingFields,
    status: status
      ? {
        state: status.state, pid: BigInt(status.pid ?? 0), startedAtMs: BigInt(status.startedAtMs ?? 0), error: status.error ?? "", reportedAtMs: BigInt(status.reportedAtMs),
        lastAction: status.lastAction ?? "", lastActionAtMs: BigInt(status.lastActionAtMs ?? 0), ...liveFields(live),
      }
      : { state: "" },
  };
}

function snapshot(ctx: HandlerContext) {
  return ctx.replica.stateMachine.read((db) => ({
    vms: listVms(db), status: listVmStatus(db), hosts: listVmHosts(db), assigned: assignedMemoryMiB(db),
    nodeNames: new Map(listNodeEndpoints(db).map((n) => [n.nodeId, n.name])),
  })).value;
}

function findVm(ctx: HandlerContext, name: string) {
  const s = snapshot(ctx);
  const vm = s.vms.find((v) => v.name === name);
  if (!vm) throw new ApiError("not_found", `VM "${name}" does not exist`, { field: "name" });
  return { s, vm };
}

function oneVm(ctx: HandlerContext, name: string) {
  const { s, vm } = findVm(ctx, name);
  return vmMessage(vm, s.status.get(vm.id), s.nodeNames);
}

function checkDescriptionField(v: string): void {
  if (v.length > vmDescriptionCharsMax || /[\n\0]/.test(v)) throw invalid("description", `must be a single line of at most ${vmDescriptionCharsMax} characters`);
}

function validateCreate(r: CreateVmRequest): void {
  check("name", r.name, nameRule);
  checkDescriptionField(r.description);
  const c = r.config;
  if (!c) throw invalid("config", "is required");
  check("config.vcpus", c.vcpus, intBetween(1, vmVcpusMax));
  check("config.memory_mib", Number(c.memoryMib), intBetween(vmMemoryMiBMin, vmMemoryMiBMax));
  if (c.machineType !== "") check("config.machine_type", c.machineType, matches(pinnedMachinePattern, "must be a pinned machine type such as pc-i440fx-7.2 or pc-q35-7.2"));
  if (!["", "auto", "kvm", "tcg"].includes(c.accelerator)) throw invalid("config.accelerator", `must be auto, kvm or tcg (got ${JSON.stringify(c.accelerator)})`);
  if (c.disks.length > vmDisksMax) throw invalid("config.disks", `at most ${vmDisksMax} disks`);
  c.disks.forEach((d, i) => {
    if (d.volume !== "" || d.image !== "") return;
    check(`config.disks[${i}].size_mib`, Number(d.sizeMib), intBetween(1, vmDiskSizeMiBMax));
    if (!["", "raw", "qcow2"].includes(d.format)) throw invalid(`config.disks[${i}].format`, `must be raw or qcow2 (got ${JSON.stringify(d.format)})`);
  });
  disksOf(c.disks);
  if (r.node !== "") check("node", r.node, nameRule);
  if (c.nics.length > vmNicsMax) throw invalid("config.nics", `at most ${vmNicsMax} NICs`);
  deviceSpecOf(c);
  const kb = c.kernelBoot;
  if (kb && kb.kernelPath !== "") {
    if (!kb.kernelPath.startsWith("/")) throw invalid("config.kernel_boot.kernel_path", "must be an absolute path on the nodes");
    if (kb.initrdPath !== "" && !kb.initrdPath.startsWith("/")) throw invalid("config.kernel_boot.initrd_path", "must be an absolute path on the nodes");
  }
}

/** The newest pinned i440fx type this node's QEMU knows (what the test guest and most guests boot on). */
function defaultMachineType(h: VmHostRecord): string | undefined {
  const versions = h.machineTypes.map((m) => /^pc-i440fx-(\d+)\.(\d+)$/.exec(m)).filter((m): m is RegExpExecArray => m !== null);
  versions.sort((a, b) => Number(b[1]) - Number(a[1]) || Number(b[2]) - Number(a[2]));
  return versions[0]?.[0];
}

/** Each resource the VM asks for exists on some node, or the request names the field that cannot fit. */
function checkFitsSomeNode(hosts: readonly VmHostRecord[], c: VmConfig, bridges: string[]): void {
  const memoryMiB = Number(c.memoryMib);
  const largest = Math.max(...hosts.map((h) => h.memoryMiB));
  if (memoryMiB > largest) throw invalid("config.memory_mib", `${memoryMiB} MiB is more than any node has (largest: ${largest} MiB)`);
  const mostCpus = Math.max(...hosts.map((h) => h.cpus));
  if (c.vcpus > mostCpus) throw invalid("config.vcpus", `${c.vcpus} vCPUs are more than any node has (most: ${mostCpus} CPUs)`);
  if (c.machineType !== "" && !hosts.some((h) => h.machineTypes.includes(c.machineType))) throw invalid("config.machine_type", `${c.machineType} is not known to QEMU on any node`);
  bridges.forEach((b, i) => {
    if (b !== "" && !hosts.some((h) => h.bridges.includes(b))) {
      throw invalid(`config.nics[${i}].bridge`, `bridge ${b} does not exist on any node (known: ${[...new Set(hosts.flatMap((h) => h.bridges))].join(", ") || "none"}); create it, or leave it empty for user-mode networking`);
    }
  });
}

async function createVm(r: CreateVmRequest, ctx: HandlerContext) {
  const c = r.config!;
  const memoryMiB = Number(c.memoryMib);
  const s = snapshot(ctx);
  if (s.vms.some((v) => v.name === r.name)) throw new ApiError("already_exists", `a VM named "${r.name}" already exists`, { field: "name" });
  if (s.hosts.length === 0) throw new ApiError("failed_precondition", "no node has reported its host facts yet; wait for the host agents to start", { field: "config" });
  const devices = deviceSpecOf(c);
  checkFitsSomeNode(s.hosts, c, devices.nics.map((n) => n.bridge));
  const bridges = devices.nics.map((n) => n.bridge).filter((b) => b !== "");
  const fits = (h: VmHostRecord) => (c.machineType === "" ? defaultMachineType(h) !== undefined : h.machineTypes.includes(c.machineType)) && h.cpus >= c.vcpus && bridges.every((b) => h.bridges.includes(b));
  const disks = disksOf(c.disks);
  const images = volumeImagesOf(ctx, disks);
  // A VM with volume disks runs only where every one of them has a copy (the node's NBD export).
  const holds = (h: VmHostRecord) => images.every((i) => i.replicas.some((rep) => rep.nodeId === h.nodeId));
  const nodeId = placeVm(s.hosts, s.assigned, memoryMiB, (h) => fits(h) && holds(h) && (r.node === "" || s.nodeNames.get(h.nodeId) === r.node));
  if (nodeId === null && r.node !== "") throw placementRefused(r.node, s, fits, holds, memoryMiB);
  if (nodeId === null && !s.hosts.some(holds)) throw new ApiError("failed_precondition", `no node holds a copy of every volume disk of VM "${r.name}" (${images.map((i) => i.name).join(", ")}); use images of one volume`, { field: "config.disks" });
  if (nodeId === null) throw new ApiError("resource_exhausted", `no node has ${memoryMiB} MiB of memory left for VM "${r.name}" (with ${c.vcpus} CPUs${bridges.length > 0 ? ` and bridges ${bridges.join(", ")}` : ""})`, { field: "config.memory_mib" });
  const machineType = c.machineType || defaultMachineType(s.hosts.find((h) => h.nodeId === nodeId)!)!;
  const kb = c.kernelBoot && c.kernelBoot.kernelPath !== "" ? { kernelPath: c.kernelBoot.kernelPath, initrdPath: c.kernelBoot.initrdPath || null, append: c.kernelBoot.append } : null;
  const spec = {
    vcpus: c.vcpus, memoryMiB, machineType, cpuModel: c.cpuModel || "qemu64", accelerator: c.accelerator || "auto",
    disks, kernelBoot: kb, ...devices,
  };
  const id = randomUUID();
  checkResult(await ctx.replica.execute({ type: "ext", name: "vm.create", payload: { id, name: r.name, nodeId, spec, desiredState: r.start ? "running" : "stopped", description: r.description } }), `creating VM "${r.name}"`);
  ctx.auditDetail.nodeId = nodeId;
  return { vm: oneVm(ctx, r.name) };
}

async function setDesired(name: string, ctx: HandlerContext, desiredState: DesiredState, stopMode: StopMode = "acpi", allowedFrom?: DesiredState[]) {
  const { vm } = findVm(ctx, name);
  if (allowedFrom && !allowedFrom.includes(vm.desiredState)) throw new ApiError("failed_precondition", `VM "${name}" is ${vm.desiredState}; it must be ${allowedFrom.join(" or ")}`, { field: "name" });
  checkResult(await ctx.replica.execute({ type: "ext", name: "vm.set_desired", payload: { id: vm.id, desiredState, stopMode } }), `setting VM "${name}" to ${desiredState}`);
  return { vm: oneVm(ctx, name) };
}

/** Reboot or reset: only a VM whose QEMU runs (running or paused) can be. */
async function powerAction(name: string, ctx: HandlerContext, action: PowerAction) {
  const { s, vm } = findVm(ctx, name);
  const state = s.status.get(vm.id)?.state ?? "";
  if (state !== "running" && state !== "paused") throw new ApiError("failed_precondition", `cannot ${action} VM "${name}": it is ${state || "not reported yet"}, not running`, { field: "name" });
  checkResult(await ctx.replica.execute({ type: "ext", name: "vm.request_action", payload: { id: vm.id, action } }), `requesting a ${action} of VM "${name}"`);
  return { vm: oneVm(ctx, name) };
}

function validateUpdate(r: UpdateVmRequest): void {
  check("name", r.name, nameRule);
  if (r.vcpus !== undefined) check("vcpus", r.vcpus, intBetween(1, vmVcpusMax));
  if (r.memoryMib !== undefined) check("memory_mib", Number(r.memoryMib), intBetween(vmMemoryMiBMin, vmMemoryMiBMax));
  if (r.description !== undefined) checkDescriptionField(r.description);
  deviceUpdateOf(r);
}

async function updateVm(r: UpdateVmRequest, ctx: HandlerContext) {
  const { vm } = findVm(ctx, r.name);
  const payload = { id: vm.id, vcpus: r.vcpus ?? null, memoryMiB: r.memoryMib === undefined ? null : Number(r.memoryMib), description: r.description ?? null, ...deviceUpdateOf(r) };
  checkResult(await ctx.replica.execute({ type: "ext", name: "vm.update", payload }), `updating VM "${r.name}"`);
  return { vm: oneVm(ctx, r.name) };
}

/** With keep_disks, the images stay on the node (its agent only removes the run directory); volume images always stay. */
async function deleteVm(r: DeleteVmRequest, ctx: HandlerContext) {
  const { s, vm } = findVm(ctx, r.name);
  const host = s.hosts.find((h) => h.nodeId === vm.nodeId);
  if (r.keepDisks && vm.spec.disks.some((d) => !isVolumeDisk(d)) && !host?.imagesRoot) throw new ApiError("failed_precondition", `keeping the disks of VM "${r.name}": node ${vm.nodeId} has not reported where it keeps images`, { field: "keep_disks" });
  const local = vm.spec.disks.filter((d): d is VmLocalDiskRecord => !isVolumeDisk(d));
  const kept = r.keepDisks ? local.map((d) => join(host!.imagesRoot, vm.id, `${d.id}.${d.format}`)) : [];
  const volumeImages = vm.spec.disks.filter(isVolumeDisk).map((d) => volumeImageName(d.volume, d.image));
  checkResult(await ctx.replica.execute({ type: "ext", name: "vm.delete", payload: { id: vm.id, keptDisks: kept } }), `deleting VM "${r.name}"`);
  const nodeName = s.nodeNames.get(vm.nodeId) ?? String(vm.nodeId);
  return { keptDisks: kept.map((path) => ({ nodeName, path })), volumeImages };
}


const byName = (r: { name: string }) => check("name", r.name, nameRule);
const object = (r: { name: string }) => `vm/${r.name}`;
const operate = { permission: vmPermissions.operate, mutation: true, object };

export function vmService(opts: VmServiceOptions = {}): RegisteredService {
  return defineService({
    descriptor: VmService,
    policy: {
      createVm: { permission: vmPermissions.manage, mutation: true, object },
      listVms: { permission: vmPermissions.read, mutation: false },
      getVm: { permission: vmPermissions.read, mutation: false, object },
      startVm: operate, stopVm: operate, shutdownVm: operate, pauseVm: operate, resumeVm: operate,
      deleteVm: { permission: vmPermissions.manage, mutation: true, object },
      rebootVm: operate, resetVm: operate,
      updateVm: { permission: vmPermissions.manage, mutation: true, object },
    },
    validate: { createVm: validateCreate, listVms: noFields, getVm: byName, startVm: byName, stopVm: byName, shutdownVm: byName, pauseVm: byName, resumeVm: byName, deleteVm: byName,
      rebootVm: byName, resetVm: byName, updateVm: validateUpdate,
    },
    handlers: {
      createVm,
      listVms: async (_r, ctx) => {
        const s = snapshot(ctx);
        const live = await withLive(opts, s.vms, s.status);
        return { vms: s.vms.map((v) => vmMessage(v, s.status.get(v.id), s.nodeNames, live.get(v.id))) };
      },
      getVm: async (r, ctx) => {
        const { s, vm } = findVm(ctx, r.name);
        const live = await withLive(opts, [vm], s.status);
        return { vm: vmMessage(vm, s.status.get(vm.id), s.nodeNames, live.get(vm.id)) };
      },
      startVm: (r, ctx) => setDesired(r.name, ctx, "running"),
      stopVm: (r, ctx) => setDesired(r.name, ctx, "stopped", "force"),
      shutdownVm: (r, ctx) => setDesired(r.name, ctx, "stopped", "acpi"),
      pauseVm: (r, ctx) => setDesired(r.name, ctx, "paused", "acpi", ["running", "paused"]),
      resumeVm: (r, ctx) => setDesired(r.name, ctx, "running", "acpi", ["running", "paused"]),
      deleteVm,
      rebootVm: (r, ctx) => powerAction(r.name, ctx, "reboot"),
      resetVm: (r, ctx) => powerAction(r.name, ctx, "reset"),
      updateVm,
    },
  });
}
