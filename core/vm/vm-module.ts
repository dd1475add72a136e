// State module of virtual machines (migrations 5 and 6): the VM records (spec, assigned node, desired
// run state), the status each node's host agent reports, and the capacity, QEMU facts and bridges
// of the nodes (for placement and validation). Placement is chosen by the proposer and re-checked here;
// MACs are allocated by the deterministic apply from the Raft index, unique cluster-wide.
import type { CommandResult } from "../state/apply.ts";
import { CommandError } from "../state/errors.ts";
import type { ApplyContext, CommandSpec, StateModule } from "../state/modules.ts";
import { checkDescription, checkUuid, checkVmName, checkVmSpec, macFromNumber } from "./vm-model.ts";
import type { DesiredState, StopMode, VmHostRecord, VmSpecInput, VmSpecRecord, VmStatusRecord } from "./vm-model.ts";
import { checked, fields, posInt } from "./vm-payload.ts";
import { checkSpecOnHosts } from "./vm-capacity.ts";
import { encodeHostFacts, listVmHosts } from "./vm-queries.ts";
import { requestAction, update } from "./vm-update.ts";
import { checkVolumeRefs } from "./vm-volumes.ts";

export { assignedMemoryMiB, getVmById, getVmByName, keptDiskVmIds, listVmHosts, listVms, listVmStatus } from "./vm-queries.ts";

/** Tries of the next MAC number when one is taken (only after 2^24 allocations wrap). */
const macProbesMax = 64;
const errorCharsMax = 4096;

export interface VmCreatePayload {
  id: string;
  name: string;
  nodeId: number;
  spec: VmSpecInput;
  desiredState: DesiredState;
  description: string;
}

function allocateMac(ctx: ApplyContext, seed: number): string | null {
  for (let k = 0; k < macProbesMax; k++) {
    const mac = macFromNumber(seed + k);
    if (!ctx.prepare("SELECT 1 FROM vm_macs WHERE mac = ?").get(mac)) return mac;
  }
  return null;
}

const create: CommandSpec<VmCreatePayload> = {
  validate(payload) {
    const p = fields("vm.create", payload);
    const desired = p.desiredState ?? "stopped";
    if (desired !== "running" && desired !== "stopped") throw new CommandError("vm.create", "desiredState", "must be running or stopped");
    return checked("vm.create", () => ({ id: checkUuid("id", p.id), name: checkVmName(p.name), nodeId: posInt("vm.create", "nodeId", p.nodeId), spec: checkVmSpec(p.spec), desiredState: desired, description: checkDescription(p.description) }));
  },
  apply(ctx, p): CommandResult {
    if (ctx.prepare("SELECT 1 FROM vms WHERE name = ?").get(p.name)) return { ok: false, code: "already_exists", field: "name", message: `a VM named "${p.name}" already exists` };
    const refused = checkSpecOnHosts(p.spec, listVmHosts(ctx.db), p.nodeId) ?? checkVolumeRefs(ctx.db, p.spec, p.id, p.nodeId);
    if (refused) return refused;
    const nics = [];
    for (const [i, n] of p.spec.nics.entries()) {
      const mac = n.mac ?? allocateMac(ctx, ctx.index * 8 + i);
      if (mac === null || ctx.prepare("SELECT 1 FROM vm_macs WHERE mac = ?").get(mac)) return { ok: false, code: "already_exists", field: `nics[${i}].mac`, message: `MAC ${mac ?? "(none free)"} is in use` };
      ctx.prepare("INSERT INTO vm_macs (mac, vm_id) VALUES (?, ?)").run(mac, p.id);
      nics.push({ ...n, mac });
    }
    const spec: VmSpecRecord = { ...p.spec, nics };
    ctx.prepare(`INSERT INTO vms (id, name, spec, node_id, desired_state, stop_mode, desired_index, created_at_ms, updated_at_ms, description, spec_index)
      VALUES (?, ?, ?, ?, ?, 'acpi', ?, ?, ?, ?, ?)`).run(p.id, p.name, JSON.stringify(spec), p.nodeId, p.desiredState, ctx.index, ctx.atMs, ctx.atMs, p.description, ctx.index);
    return { ok: true, id: p.id, nodeId: p.nodeId, macs: nics.map((n) => n.mac) };
  },
};

const setDesired: CommandSpec<{ id: string; desiredState: DesiredState; stopMode: StopMode }> = {
  validate(payload) {
    const p = fields("vm.set_desired", payload);
    if (p.desiredState !== "running" && p.desiredState !== "stopped" && p.desiredState !== "paused") throw new CommandError("vm.set_desired", "desiredState", "must be running, stopped or paused");
    const stopMode = p.stopMode ?? "acpi";
    if (stopMode !== "acpi" && stopMode !== "force") throw new CommandError("vm.set_desired", "stopMode", "must be acpi or force");
    return { id: checked("vm.set_desired", () => checkUuid("id", p.id)), desiredState: p.desiredState, stopMode };
  },
  apply(ctx, p) {
    const changed = ctx.prepare("UPDATE vms SET desired_state = ?, stop_mode = ?, desired_index = ?, updated_at_ms = ? WHERE id = ?").run(p.desiredState, p.stopMode, ctx.index, ctx.atMs, p.id).changes;
    return changed > 0 ? { ok: true } : { ok: false, code: "not_found", field: "id", message: `VM ${p.id} does not exist` };
  },
};

const keptPathsMax = 64;

/** keptDisks: the image paths on the VM's node that its agent must leave in place. */
const remove: CommandSpec<{ id: string; keptDisks: string[] }> = {
  validate(payload) {
    const p = fields("vm.delete", payload);
    const kept = p.keptDisks ?? [];
    if (!Array.isArray(kept) || kept.length > keptPathsMax || !kept.every((x) => typeof x === "string" && x.startsWith("/") && x.length <= 1024)) {
      throw new CommandError("vm.delete", "keptDisks", `must be a list of at most ${keptPathsMax} absolute paths`);
    }
    return { id: checked("vm.delete", () => checkUuid("id", p.id)), keptDisks: kept as string[] };
  },
  apply(ctx, p) {
    const nodeId = ctx.prepare("SELECT node_id FROM vms WHERE id = ?").pluck().get(p.id) as number | undefined;
    if (nodeId !== undefined && p.keptDisks.length > 0) {
      ctx.prepare("INSERT OR REPLACE INTO vm_kept_disks (vm_id, node_id, disks, deleted_at_ms) VALUES (?, ?, ?, ?)").run(p.id, nodeId, JSON.stringify(p.keptDisks), ctx.atMs);
    }
    ctx.prepare("DELETE FROM vm_macs WHERE vm_id = ?").run(p.id);
    ctx.prepare("DELETE FROM vm_status WHERE vm_id = ?").run(p.id);
    return { ok: true, deleted: ctx.prepare("DELETE FROM vms WHERE id = ?").run(p.id).changes > 0 };
  },
};

type StatusPayload = Omit<VmStatusRecord, "reportedAtMs">;

function nonNegInt(cmd: string, field: string, v: unknown): number {
  const n = v ?? 0;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) throw new CommandError(cmd, field, "must be a non-negative integer");
  return n;
}

const reportStatus: CommandSpec<StatusPayload> = {
  validate(payload) {
    const p = fields("vm.report_status", payload);
    const optInt = (f: string, v: unknown) => (v === null || v === undefined ? null : posInt("vm.report_status", f, v));
    if (typeof p.state !== "string" || !/^[a-z-]{1,32}$/.test(p.state)) throw new CommandError("vm.report_status", "state", "must be a run state name");
    if (p.error !== null && p.error !== undefined && typeof p.error !== "string") throw new CommandError("vm.report_status", "error", "must be a string or null");
    const acted = nonNegInt("vm.report_status", "actedIndex", p.actedIndex);
    if (p.lastAction !== null && p.lastAction !== undefined && (typeof p.lastAction !== "string" || !/^[a-z-]{1,32}$/.test(p.lastAction))) throw new CommandError("vm.report_status", "lastAction", "must be an action name or null");
    return {
      specIndex: nonNegInt("vm.report_status", "specIndex", p.specIndex), actionIndex: nonNegInt("vm.report_status", "actionIndex", p.actionIndex),
      lastAction: typeof p.lastAction === "string" ? p.lastAction : null, lastActionAtMs: optInt("lastActionAtMs", p.lastActionAtMs),
      vmId: checked("vm.report_status", () => checkUuid("vmId", p.vmId)), nodeId: posInt("vm.report_status", "nodeId", p.nodeId), state: p.state,
      pid: optInt("pid", p.pid), startedAtMs: optInt("startedAtMs", p.startedAtMs), error: typeof p.error === "string" ? p.error.slice(0, errorCharsMax) : null, actedIndex: acted,
    };
  },
  apply(ctx, p) {
    // A late report of a deleted VM, or from a node it no longer belongs to, must not resurrect a row.
    const owner = ctx.prepare("SELECT node_id FROM vms WHERE id = ?").pluck().get(p.vmId) as number | undefined;
    if (owner !== p.nodeId) return { ok: false, code: "not_found", field: "vmId", message: `VM ${p.vmId} is not assigned to node ${p.nodeId}` };
    ctx.prepare(`INSERT INTO vm_status (vm_id, node_id, state, pid, started_at_ms, error, acted_index, reported_at_ms, spec_index, action_index, last_action, last_action_at_ms)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (vm_id) DO UPDATE SET node_id = excluded.node_id, state = excluded.state, pid = excluded.pid, started_at_ms = excluded.started_at_ms,
      error = excluded.error, acted_index = excluded.acted_index, reported_at_ms = excluded.reported_at_ms, spec_index = excluded.spec_index,
      action_index = excluded.action_index, last_action = excluded.last_action, last_action_at_ms = excluded.last_action_at_ms`)
      .run(p.vmId, p.nodeId, p.state, p.pid, p.startedAtMs, p.error, p.actedIndex, ctx.atMs, p.specIndex, p.actionIndex, p.lastAction, p.lastActionAtMs);
    // A QEMU started from the newest spec has taken on every pending change.
    if (p.pid !== null) ctx.prepare("UPDATE vms SET pending_fields = '[]' WHERE id = ? AND spec_index <= ?").run(p.vmId, p.specIndex);
    return { ok: true };
  },
};

const reportHost: CommandSpec<Omit<VmHostRecord, "reportedAtMs">> = {
  validate(payload) {
    const p = fields("vm.report_host", payload);
    const names = (f: string, v: unknown): string[] => {
      if (!Array.isArray(v) || v.length > 1024 || !v.every((x) => typeof x === "string" && x.length <= 128)) throw new CommandError("vm.report_host", f, "must be a list of names");
      return v as string[];
    };
    const imagesRoot = p.imagesRoot ?? "";
    if (typeof imagesRoot !== "string" || (imagesRoot !== "" && !imagesRoot.startsWith("/")) || imagesRoot.length > 1024) throw new CommandError("vm.report_host", "imagesRoot", "must be an absolute path");
    return { imagesRoot, bridges: names("bridges", p.bridges ?? []), nodeId: posInt("vm.report_host", "nodeId", p.nodeId), memoryMiB: posInt("vm.report_host", "memoryMiB", p.memoryMiB), cpus: posInt("vm.report_host", "cpus", p.cpus), machineTypes: names("machineTypes", p.machineTypes), accelerators: names("accelerators", p.accelerators) };
  },
  apply(ctx, p) {
    ctx.prepare(`INSERT INTO vm_hosts (node_id, memory_mib, cpus, machine_types, accelerators, reported_at_ms, images_root) VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (node_id) DO UPDATE SET memory_mib = excluded.memory_mib, cpus = excluded.cpus, machine_types = excluded.machine_types,
      accelerators = excluded.accelerators, reported_at_ms = excluded.reported_at_ms, images_root = excluded.images_root`)
      .run(p.nodeId, p.memoryMiB, p.cpus, encodeHostFacts(p.machineTypes, p.bridges), JSON.stringify(p.accelerators), ctx.atMs, p.imagesRoot);
    return { ok: true };
  },
};

export const vmModule: StateModule = {
  name: "vms",
  migrations: [
    {
      version: 5,
      name: "virtual machines",
      sql: `CREATE TABLE vms (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, spec TEXT NOT NULL, node_id INTEGER NOT NULL,
  desired_state TEXT NOT NULL, stop_mode TEXT NOT NULL, desired_index INTEGER NOT NULL, created_at_ms INTEGER NOT NULL, updated_at_ms INTEGER NOT NULL);
CREATE INDEX vms_node ON vms (node_id);
CREATE TABLE vm_macs (mac TEXT PRIMARY KEY, vm_id TEXT NOT NULL);
CREATE TABLE vm_status (vm_id TEXT PRIMARY KEY, node_id INTEGER NOT NULL, state TEXT NOT NULL, pid INTEGER, started_at_ms INTEGER,
  error TEXT, acted_index INTEGER NOT NULL, reported_at_ms INTEGER NOT NULL);
CREATE TABLE vm_hosts (node_id INTEGER PRIMARY KEY, memory_mib INTEGER NOT NULL, cpus INTEGER NOT NULL, machine_types TEXT NOT NULL,
  accelerators TEXT NOT NULL, reported_at_ms INTEGER NOT NULL);`,
    },
    {
      version: 6,
      name: "VM updates, power actions, kept disks",
      sql: `ALTER TABLE vms ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE vms ADD COLUMN spec_index INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vms ADD COLUMN pending_fields TEXT NOT NULL DEFAULT '[]';
ALTER TABLE vms ADD COLUMN action TEXT;
ALTER TABLE vms ADD COLUMN action_index INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vm_status ADD COLUMN spec_index INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vm_status ADD COLUMN action_index INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vm_status ADD COLUMN last_action TEXT;
ALTER TABLE vm_status ADD COLUMN last_action_at_ms INTEGER;
ALTER TABLE vm_hosts ADD COLUMN images_root TEXT NOT NULL DEFAULT '';
CREATE TABLE vm_kept_disks (vm_id TEXT PRIMARY KEY, node_id INTEGER NOT NULL, disks TEXT NOT NULL, deleted_at_ms INTEGER NOT NULL);`,
    },
  ],
  commands: {
    "vm.create": create, "vm.set_desired": setDesired, "vm.delete": remove, "vm.report_status": reportStatus, "vm.report_host": reportHost,
    "vm.update": update, "vm.request_action": requestAction,
  },
};
