// Checks of a VM spec against what the nodes reported (VmHostRecord): memory and vCPUs within
// the largest node and the assigned one, the machine type known to its QEMU, every NIC's bridge
// present on it. Pure; used by the create and update applies, so a refused change writes nothing.
import type { VmHostRecord, VmSpecRecord } from "./vm-model.ts";

export interface HostCheckFailure {
  ok: false;
  code: "invalid_argument" | "failed_precondition" | "not_found";
  field: string;
  message: string;
}

type Checked = Pick<VmSpecRecord, "vcpus" | "memoryMiB" | "machineType"> & { nics: ReadonlyArray<{ bridge: string }> };

function invalid(field: string, message: string): HostCheckFailure {
  return { ok: false, code: "invalid_argument", field, message };
}

/** The first thing wrong with `spec` on node `nodeId` among `hosts`, or null when it fits. */
export function checkSpecOnHosts(spec: Checked, hosts: readonly VmHostRecord[], nodeId: number): HostCheckFailure | null {
  const largestMiB = Math.max(0, ...hosts.map((h) => h.memoryMiB));
  if (spec.memoryMiB > largestMiB) return invalid("memory_mib", `${spec.memoryMiB} MiB is more than any node has (largest: ${largestMiB} MiB)`);
  const mostCpus = Math.max(0, ...hosts.map((h) => h.cpus));
  if (spec.vcpus > mostCpus) return invalid("vcpus", `${spec.vcpus} vCPUs are more than any node has (most: ${mostCpus} CPUs)`);
  const host = hosts.find((h) => h.nodeId === nodeId);
  if (!host) return { ok: false, code: "failed_precondition", field: "node_id", message: `node ${nodeId} has no host agent report (is it up?)` };
  if (spec.memoryMiB > host.memoryMiB) return invalid("memory_mib", `${spec.memoryMiB} MiB is more than node ${nodeId} has (${host.memoryMiB} MiB)`);
  if (spec.vcpus > host.cpus) return invalid("vcpus", `${spec.vcpus} vCPUs are more than node ${nodeId} has (${host.cpus} CPUs)`);
  if (!host.machineTypes.includes(spec.machineType)) return invalid("machine_type", `${spec.machineType} is not known to QEMU on node ${nodeId}`);
  for (const [i, n] of spec.nics.entries()) {
    if (n.bridge !== "" && !host.bridges.includes(n.bridge)) {
      return invalid(`nics[${i}].bridge`, `bridge ${n.bridge} does not exist on node ${nodeId} (it has: ${host.bridges.join(", ") || "none"}); create it there or use "" for user-mode networking`);
    }
  }
  return null;
}
