// Commands that change an existing VM besides its run state: vm.update (vCPUs, memory,
// description) and vm.request_action (one-shot reboot or reset). A running QEMU cannot take on
// new vCPUs or memory, so while the VM runs those changes are recorded as pending fields; the
// agent starts the next QEMU from the new spec and its status report clears them.
import { CommandError } from "../state/errors.ts";
import type { CommandSpec } from "../state/modules.ts";
import { checkDescription, checkUuid, vmMemoryMiBMax, vmMemoryMiBMin, vmVcpusMax } from "./vm-model.ts";
import type { PowerAction, RestartField } from "./vm-model.ts";
import { checked, fields } from "./vm-payload.ts";
import { getVmById, listVmHosts, listVmStatus } from "./vm-queries.ts";

/** Reported states in which a QEMU process exists (changes to it wait for the next start). */
export const aliveStates: ReadonlySet<string> = new Set(["starting", "running", "paused", "shutting-down"]);

export interface VmUpdatePayload {
  id: string;
  vcpus: number | null;
  memoryMiB: number | null;
  description: string | null;
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
    };
  },
  apply(ctx, p) {
    const vm = getVmById(ctx.db, p.id);
    if (!vm) return { ok: false, code: "not_found", field: "id", message: `VM ${p.id} does not exist` };
    if (p.memoryMiB !== null) {
      const host = listVmHosts(ctx.db).find((h) => h.nodeId === vm.nodeId);
      if (!host || p.memoryMiB > host.memoryMiB) return { ok: false, code: "invalid_argument", field: "memory_mib", message: `${p.memoryMiB} MiB is more than node ${vm.nodeId} has (${host?.memoryMiB ?? 0} MiB)` };
    }
    const changed: RestartField[] = [];
    if (p.vcpus !== null && p.vcpus !== vm.spec.vcpus) changed.push("vcpus");
    if (p.memoryMiB !== null && p.memoryMiB !== vm.spec.memoryMiB) changed.push("memory_mib");
    const spec = { ...vm.spec, vcpus: p.vcpus ?? vm.spec.vcpus, memoryMiB: p.memoryMiB ?? vm.spec.memoryMiB };
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
