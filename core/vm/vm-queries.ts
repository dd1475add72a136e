// Reads of the VM tables (rows to records) for the API, the host agent and the commands' applies.
import type Database from "better-sqlite3";
import { normalizeSpecRecord } from "./vm-model.ts";
import type { DesiredState, PowerAction, RestartField, StopMode, VmHostRecord, VmRecord, VmSpecRecord, VmStatusRecord } from "./vm-model.ts";

interface VmRow {
  id: string; name: string; spec: string; node_id: number; desired_state: DesiredState; stop_mode: StopMode; desired_index: number; created_at_ms: number; updated_at_ms: number;
  description: string; spec_index: number; pending_fields: string; action: PowerAction | null; action_index: number;
}

function vmOfRow(r: VmRow): VmRecord {
  return {
    id: r.id, name: r.name, spec: normalizeSpecRecord(JSON.parse(r.spec) as VmSpecRecord), nodeId: r.node_id, desiredState: r.desired_state, stopMode: r.stop_mode, desiredIndex: r.desired_index,
    createdAtMs: r.created_at_ms, updatedAtMs: r.updated_at_ms, description: r.description, specIndex: r.spec_index, pendingFields: JSON.parse(r.pending_fields) as RestartField[],
    action: r.action, actionIndex: r.action_index,
  };
}

export function getVmById(db: Database.Database, id: string): VmRecord | null {
  const r = db.prepare("SELECT * FROM vms WHERE id = ?").get(id) as VmRow | undefined;
  return r ? vmOfRow(r) : null;
}

/** VMs deleted with keep_disks on this node: their images stay. */
export function keptDiskVmIds(db: Database.Database, nodeId: number): Set<string> {
  return new Set(db.prepare("SELECT vm_id FROM vm_kept_disks WHERE node_id = ?").pluck().all(nodeId) as string[]);
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
    reported_at_ms AS reportedAtMs, spec_index AS specIndex, action_index AS actionIndex, last_action AS lastAction, last_action_at_ms AS lastActionAtMs FROM vm_status`).all() as VmStatusRecord[];
  return new Map(rows.map((r) => [r.vmId, r]));
}

/**
 * The vm_hosts.machine_types column holds the node's QEMU facts as JSON: a plain list of machine
 * types (first reports), or {machineTypes, bridges} since nodes report their bridges. Keeping
 * the bridges there avoids a schema change; a later migration can give them their own column.
 */
export function encodeHostFacts(machineTypes: string[], bridges: string[]): string {
  return JSON.stringify({ machineTypes, bridges });
}

function decodeHostFacts(text: string): { machineTypes: string[]; bridges: string[] } {
  const v = JSON.parse(text) as string[] | { machineTypes: string[]; bridges?: string[] };
  return Array.isArray(v) ? { machineTypes: v, bridges: [] } : { machineTypes: v.machineTypes, bridges: v.bridges ?? [] };
}

export function listVmHosts(db: Database.Database): VmHostRecord[] {
  const rows = db.prepare("SELECT node_id, memory_mib, cpus, machine_types, accelerators, reported_at_ms, images_root FROM vm_hosts ORDER BY node_id").all() as Array<Record<string, number | string>>;
  return rows.map((r) => ({
    imagesRoot: r.images_root as string, nodeId: r.node_id as number, memoryMiB: r.memory_mib as number, cpus: r.cpus as number, ...decodeHostFacts(r.machine_types as string),
    accelerators: JSON.parse(r.accelerators as string) as string[], reportedAtMs: r.reported_at_ms as number,
  }));
}

/** Memory (MiB) of the VMs assigned to each node. */
export function assignedMemoryMiB(db: Database.Database): Map<number, number> {
  return new Map(listVms(db).reduce((m, v) => m.set(v.nodeId, (m.get(v.nodeId) ?? 0) + v.spec.memoryMiB), new Map<number, number>()));
}
