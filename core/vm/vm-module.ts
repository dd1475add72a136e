// State module of virtual machines (migration 5): the VM records (spec, assigned node, desired
// run state), the status each node's host agent reports, and the capacity and QEMU facts of the
// nodes (for placement and validation). Placement is chosen by the proposer and re-checked here;
// MACs are allocated by the deterministic apply from the Raft index, unique cluster-wide.
import type Database from "better-sqlite3";
import type { CommandResult } from "../state/apply.ts";
import { CommandError } from "../state/errors.ts";
import type { ApplyContext, CommandSpec, StateModule } from "../state/modules.ts";
import { checkUuid, checkVmName, checkVmSpec, macFromNumber, VmFieldError } from "./vm-model.ts";
import type { DesiredState, StopMode, VmHostRecord, VmRecord, VmSpecInput, VmSpecRecord, VmStatusRecord } from "./vm-model.ts";

/** Tries of the next MAC number when one is taken (only after 2^24 allocations wrap). */
const macProbesMax = 64;
const errorCharsMax = 4096;

function fields(cmd: string, p: unknown): Record<string, unknown> {
  if (p === null || typeof p !== "object" || Array.isArray(p)) throw new CommandError(cmd, "payload", "must be an object");
  return p as Record<string, unknown>;
}

/** Runs a model check, turning its VmFieldError into the CommandError of `cmd`. */
function checked<T>(cmd: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof VmFieldError) throw new CommandError(cmd, err.field, err.reason);
    throw err;
  }
}

function posInt(cmd: string, field: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) throw new CommandError(cmd, field, "must be a positive integer");
  return v;
}

export interface VmCreatePayload {
  id: string;
  name: string;
  nodeId: number;
  spec: VmSpecInput;
  desiredState: DesiredState;
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
    return checked("vm.create", () => ({ id: checkUuid("id", p.id), name: checkVmName(p.name), nodeId: posInt("vm.create", "nodeId", p.nodeId), spec: checkVmSpec(p.spec), desiredState: desired }));
  },
  apply(ctx, p): CommandResult {
    if (ctx.prepare("SELECT 1 FROM vms WHERE name = ?").get(p.name)) return { ok: false, code: "already_exists", field: "name", message: `a VM named "${p.name}" already exists` };
    const hosts = listVmHosts(ctx.db);
    const largest = Math.max(0, ...hosts.map((h) => h.memoryMiB));
    if (p.spec.memoryMiB > largest) return { ok: false, code: "invalid_argument", field: "memory_mib", message: `${p.spec.memoryMiB} MiB is more than any node has (largest: ${largest} MiB)` };
    const host = hosts.find((h) => h.nodeId === p.nodeId);
    if (!host) return { ok: false, code: "failed_precondition", field: "node_id", message: `node ${p.nodeId} has no host agent report (is it up?)` };
    if (!host.machineTypes.includes(p.spec.machineType)) return { ok: false, code: "invalid_argument", field: "machine_type", message: `${p.spec.machineType} is not known to QEMU on node ${p.nodeId}` };
    const nics = [];
    for (const [i, n] of p.spec.nics.entries()) {
      const mac = n.mac ?? allocateMac(ctx, ctx.index * 8 + i);
      if (mac === null || ctx.prepare("SELECT 1 FROM vm_macs WHERE mac = ?").get(mac)) return { ok: false, code: "already_exists", field: `nics[${i}].mac`, message: `MAC ${mac ?? "(none free)"} is in use` };
      ctx.prepare("INSERT INTO vm_macs (mac, vm_id) VALUES (?, ?)").run(mac, p.id);
      nics.push({ id: n.id, mac });
    }
    const spec: VmSpecRecord = { ...p.spec, nics };
    ctx.prepare(`INSERT INTO vms (id, name, spec, node_id, desired_state, stop_mode, desired_index, created_at_ms, updated_at_ms)
      VALUES (?, ?, ?, ?, ?, 'acpi', ?, ?, ?)`).run(p.id, p.name, JSON.stringify(spec), p.nodeId, p.desiredState, ctx.index, ctx.atMs, ctx.atMs);
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

const remove: CommandSpec<{ id: string }> = {
  validate: (payload) => ({ id: checked("vm.delete", () => checkUuid("id", fields("vm.delete", payload).id)) }),
  apply(ctx, p) {
    ctx.prepare("DELETE FROM vm_macs WHERE vm_id = ?").run(p.id);
    ctx.prepare("DELETE FROM vm_status WHERE vm_id = ?").run(p.id);
    return { ok: true, deleted: ctx.prepare("DELETE FROM vms WHERE id = ?").run(p.id).changes > 0 };
  },
};

type StatusPayload = Omit<VmStatusRecord, "reportedAtMs">;

const reportStatus: CommandSpec<StatusPayload> = {
  validate(payload) {
    const p = fields("vm.report_status", payload);
    const optInt = (f: string, v: unknown) => (v === null || v === undefined ? null : posInt("vm.report_status", f, v));
    if (typeof p.state !== "string" || !/^[a-z-]{1,32}$/.test(p.state)) throw new CommandError("vm.report_status", "state", "must be a run state name");
    if (p.error !== null && p.error !== undefined && typeof p.error !== "string") throw new CommandError("vm.report_status", "error", "must be a string or null");
    const acted = p.actedIndex ?? 0;
    if (typeof acted !== "number" || !Number.isSafeInteger(acted) || acted < 0) throw new CommandError("vm.report_status", "actedIndex", "must be a non-negative integer");
    return {
      vmId: checked("vm.report_status", () => checkUuid("vmId", p.vmId)), nodeId: posInt("vm.report_status", "nodeId", p.nodeId), state: p.state,
      pid: optInt("pid", p.pid), startedAtMs: optInt("startedAtMs", p.startedAtMs), error: typeof p.error === "string" ? p.error.slice(0, errorCharsMax) : null, actedIndex: acted,
    };
  },
  apply(ctx, p) {
    // A late report of a deleted VM, or from a node it no longer belongs to, must not resurrect a row.
    const owner = ctx.prepare("SELECT node_id FROM vms WHERE id = ?").pluck().get(p.vmId) as number | undefined;
    if (owner !== p.nodeId) return { ok: false, code: "not_found", field: "vmId", message: `VM ${p.vmId} is not assigned to node ${p.nodeId}` };
    ctx.prepare(`INSERT INTO vm_status (vm_id, node_id, state, pid, started_at_ms, error, acted_index, reported_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (vm_id) DO UPDATE SET node_id = excluded.node_id, state = excluded.state, pid = excluded.pid, started_at_ms = excluded.started_at_ms,
      error = excluded.error, acted_index = excluded.acted_index, reported_at_ms = excluded.reported_at_ms`)
      .run(p.vmId, p.nodeId, p.state, p.pid, p.startedAtMs, p.error, p.actedIndex, ctx.atMs);
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
    return { nodeId: posInt("vm.report_host", "nodeId", p.nodeId), memoryMiB: posInt("vm.report_host", "memoryMiB", p.memoryMiB), cpus: posInt("vm.report_host", "cpus", p.cpus), machineTypes: names("machineTypes", p.machineTypes), accelerators: names("accelerators", p.accelerators) };
  },
  apply(ctx, p) {
    ctx.prepare(`INSERT INTO vm_hosts (node_id, memory_mib, cpus, machine_types, accelerators, reported_at_ms) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (node_id) DO UPDATE SET memory_mib = excluded.memory_mib, cpus = excluded.cpus, machine_types = excluded.machine_types,
      accelerators = excluded.accelerators, reported_at_ms = excluded.reported_at_ms`)
      .run(p.nodeId, p.memoryMiB, p.cpus, JSON.stringify(p.machineTypes), JSON.stringify(p.accelerators), ctx.atMs);
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
  ],
  commands: { "vm.create": create, "vm.set_desired": setDesired, "vm.delete": remove, "vm.report_status": reportStatus, "vm.report_host": reportHost },
};

interface VmRow { id: string; name: string; spec: string; node_id: number; desired_state: DesiredState; stop_mode: StopMode; desired_index: number; created_at_ms: number; updated_at_ms: number }

function vmOfRow(r: VmRow): VmRecord {
  return { id: r.id, name: r.name, spec: JSON.parse(r.spec) as VmSpecRecord, nodeId: r.node_id, desiredState: r.desired_state, stopMode: r.stop_mode, desiredIndex: r.desired_index, createdAtMs: r.created_at_ms, updatedAtMs: r.updated_at_ms };
}

/** VMs, all or those assigned to one node, by name. */
export function listVms(db: Database.Database, nodeId?: number): VmRecord[] {
  const rows = (nodeId === undefined ? db.prepare("SELECT * FROM vms ORDER BY name").all() : db.prepare("SELECT * FROM vms WHERE node_id = ? ORDER BY name").all(nodeId)) as VmRow[];
  return rows.map(vmOfRow);
}

export function getVmByName(db: Database.Database, name: string): VmRecord | null {
  const r = db.prepare("SELECT * FROM vms WHERE name = ?").get(name) as VmRow | undefined;
  return r ? vmOfRow(r) : null;
}

export function listVmStatus(db: Database.Database): Map<string, VmStatusRecord> {
  const rows = db.prepare(`SELECT vm_id AS vmId, node_id AS nodeId, state, pid, started_at_ms AS startedAtMs, error, acted_index AS actedIndex,
    reported_at_ms AS reportedAtMs FROM vm_status`).all() as VmStatusRecord[];
  return new Map(rows.map((r) => [r.vmId, r]));
}

export function listVmHosts(db: Database.Database): VmHostRecord[] {
  const rows = db.prepare("SELECT node_id, memory_mib, cpus, machine_types, accelerators, reported_at_ms FROM vm_hosts ORDER BY node_id").all() as Array<Record<string, number | string>>;
  return rows.map((r) => ({ nodeId: r.node_id as number, memoryMiB: r.memory_mib as number, cpus: r.cpus as number, machineTypes: JSON.parse(r.machine_types as string) as string[], accelerators: JSON.parse(r.accelerators as string) as string[], reportedAtMs: r.reported_at_ms as number }));
}

/** Memory (MiB) of the VMs assigned to each node. */
export function assignedMemoryMiB(db: Database.Database): Map<number, number> {
  return new Map(listVms(db).reduce((m, v) => m.set(v.nodeId, (m.get(v.nodeId) ?? 0) + v.spec.memoryMiB), new Map<number, number>()));
}


