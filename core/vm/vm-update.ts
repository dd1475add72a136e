// Commands that change an existing VM besides its run state: vm.update (vCPUs, memory,
// description, NIC bridges and VLANs, CD-ROM, cloud-init, display, boot order) and
// vm.request_action (one-shot reboot or reset). A running QEMU does not take on those device
// changes, so while the VM runs they are recorded as pending fields; the agent starts the next
// QEMU from the new spec and its status report clears them. A field left out stays as it is.
import { CommandError } from "../state/errors.ts";
import type { CommandSpec } from "../state/modules.ts";
import { checkSpecOnHosts } from "./vm-capacity.ts";
import { checkBootOrder, checkCdrom, checkCloudInit, checkDisplay } from "./vm-devices.ts";
import type { BootDevice, VmCdromRecord, VmCloudInitRecord, VmDisplay } from "./vm-devices.ts";
import { checkDescription, checkNics, checkUuid, vmMemoryMiBMax, vmMemoryMiBMin, vmVcpusMax } from "./vm-model.ts";
import type { PowerAction, RestartField, VmRecord, VmSpecRecord } from "./vm-model.ts";
import { checked, fields } from "./vm-payload.ts";
import { getVmById, listVmHosts, listVmStatus } from "./vm-queries.ts";
import { checkVolumeRefs } from "./vm-volumes.ts";

/** Reported states in which a QEMU process exists (changes to it wait for the next start). */
export const aliveStates: ReadonlySet<string> = new Set(["starting", "running", "paused", "shutting-down"]);

export interface VmUpdatePayload {
  id: string;
  vcpus: number | null;
  memoryMiB: number | null;
  description: string | null;
  /** Bridge and VLAN per existing NIC, in order (MACs stay); absent: unchanged. */
  nics?: Array<{ bridge: string; vlan: number | null }>;
  /** null removes the CD-ROM (or the cloud-init seed); absent: unchanged. */
  cdrom?: VmCdromRecord | null;
  cloudInit?: VmCloudInitRecord | null;
  display?: VmDisplay;
  bootOrder?: BootDevice[];
}

/** The device fields of an update payload that are present, checked. */
function deviceChanges(p: Record<string, unknown>): Pick<VmUpdatePayload, "nics" | "cdrom" | "cloudInit" | "display" | "bootOrder"> {
  const out: Pick<VmUpdatePayload, "nics" | "cdrom" | "cloudInit" | "display" | "bootOrder"> = {};
  if (p.nics !== undefined) out.nics = checkNics(p.nics).map((n) => ({ bridge: n.bridge, vlan: n.vlan }));
  if (p.cdrom !== undefined) out.cdrom = checkCdrom(p.cdrom);
  if (p.cloudInit !== undefined) out.cloudInit = checkCloudInit(p.cloudInit);
  if (p.display !== undefined) out.display = checkDisplay(p.display);
  if (p.bootOrder !== undefined) out.bootOrder = checkBootOrder(p.bootOrder);
  return out;
}

/** The spec after the update and the restart fields it changed. */
function updatedSpec(vm: VmRecord, p: VmUpdatePayload): { spec: VmSpecRecord; changed: RestartField[] } | { field: string; message: string } {
  const s = vm.spec;
  if (p.nics && p.nics.length !== s.nics.length) return { field: "nics", message: `give a bridge and VLAN for each of the VM's ${s.nics.length} NICs (got ${p.nics.length}); adding or removing NICs is not supported by update` };
  const spec: VmSpecRecord = {
    ...s, vcpus: p.vcpus ?? s.vcpus, memoryMiB: p.memoryMiB ?? s.memoryMiB,
    nics: p.nics ? s.nics.map((n, i) => ({ ...n, bridge: p.nics![i]!.bridge, vlan: p.nics![i]!.vlan })) : s.nics,
    cdrom: p.cdrom === undefined ? s.cdrom : p.cdrom, cloudInit: p.cloudInit === undefined ? s.cloudInit : p.cloudInit,
    display: p.display ?? s.display, bootOrder: p.bootOrder ?? s.bootOrder,
  };
  const differs = (a: unknown, b: unknown) => JSON.stringify(a) !== JSON.stringify(b);
  const fields: Array<[RestartField, unknown, unknown]> = [
    ["vcpus", s.vcpus, spec.vcpus], ["memory_mib", s.memoryMiB, spec.memoryMiB], ["nics", s.nics, spec.nics], ["cdrom", s.cdrom, spec.cdrom],
    ["cloud_init", s.cloudInit, spec.cloudInit], ["display", s.display, spec.display], ["boot_order", s.bootOrder, spec.bootOrder],
  ];
  return { spec, changed: fields.filter(([, a, b]) => differs(a, b)).map(([f]) => f) };
}

function optInt(field: string, v: unknown, min: number, max: number): number | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) throw new CommandError("vm.update", field, `must be an integer from ${min} to ${max}`);
  return v;
}

export const update: CommandSpec<VmUpdatePayload> = {
  validate(payload) {
    const p = fields("vm.update", payload);
    return {
      id: checked("vm.update", () => checkUuid("id", p.id)),
      vcpus: optInt("vcpus", p.vcpus, 1, vmVcpusMax),
      memoryMiB: optInt("memoryMiB", p.memoryMiB, vmMemoryMiBMin, vmMemoryMiBMax),
      description: p.description === undefined || p.description === null ? null : checked("vm.update", () => checkDescription(p.description)),
      ...checked("vm.update", () => deviceChanges(p)),
    };
  },
  apply(ctx, p) {
    const vm = getVmById(ctx.db, p.id);
    if (!vm) return { ok: false, code: "not_found", field: "id", message: `VM ${p.id} does not exist` };
    const next = updatedSpec(vm, p);
    if ("field" in next) return { ok: false, code: "invalid_argument", field: next.field, message: next.message };
    const { spec, changed } = next;
    const refused = changed.length > 0 ? checkSpecOnHosts(spec, listVmHosts(ctx.db), vm.nodeId) ?? (changed.includes("cdrom") ? checkVolumeRefs(ctx.db, { disks: [], cdrom: spec.cdrom }, vm.id, vm.nodeId) : null) : null;
    if (refused) return refused;
    const alive = aliveStates.has(listVmStatus(ctx.db).get(vm.id)?.state ?? "");
    const pending = alive ? [...new Set([...vm.pendingFields, ...changed])].sort() : [];
    ctx.prepare("UPDATE vms SET spec = ?, description = ?, spec_index = ?, pending_fields = ?, updated_at_ms = ? WHERE id = ?")
      .run(JSON.stringify(spec), p.description ?? vm.description, changed.length > 0 ? ctx.index : vm.specIndex, JSON.stringify(pending), ctx.atMs, vm.id);
    return { ok: true, changed, pendingFields: pending };
  },
};

export const requestAction: CommandSpec<{ id: string; action: PowerAction }> = {
  validate(payload) {
    const p = fields("vm.request_action", payload);
    if (p.action !== "reboot" && p.action !== "reset") throw new CommandError("vm.request_action", "action", "must be reboot or reset");
    return { id: checked("vm.request_action", () => checkUuid("id", p.id)), action: p.action };
  },
  apply(ctx, p) {
    const changed = ctx.prepare("UPDATE vms SET action = ?, action_index = ?, updated_at_ms = ? WHERE id = ?").run(p.action, ctx.index, ctx.atMs, p.id).changes;
    return changed > 0 ? { ok: true, actionIndex: ctx.index } : { ok: false, code: "not_found", field: "id", message: `VM ${p.id} does not exist` };
  },
};
