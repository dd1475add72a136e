// The VM events of the event stream, from successive reads of the VM records and their reported
// status: "vm.state" when a VM's state changes, "vm.error" when a VM that keeps running reports a
// new error (an online disk grow its QEMU refused, for one). A failed start is a state change
// ("failed") and carries its error there. Pure: the caller reads the state and publishes.
import type { BusEvent } from "../api/events/bus.ts";
import type { VmRecord, VmStatusRecord } from "../vm/vm-model.ts";

export type VmEvent = Omit<BusEvent, "id" | "timeMs">;

interface Seen { state: string; error: string }

export class VmEventDiff {
  private readonly seen = new Map<string, Seen>();

  /** The events since the previous step; the first step only records what is there. */
  step(vms: readonly VmRecord[], status: ReadonlyMap<string, VmStatusRecord>): VmEvent[] {
    const events: VmEvent[] = [];
    const present = new Set<string>();
    for (const vm of vms) {
      present.add(vm.id);
      const s = status.get(vm.id);
      const now: Seen = { state: s?.state ?? "unknown", error: s?.error ?? "" };
      const before = this.seen.get(vm.id);
      this.seen.set(vm.id, now);
      if (before === undefined) continue;
      if (before.state !== now.state) {
        events.push({ kind: "vm.state", object: `vm/${vm.name}`, message: `VM ${vm.name} is ${now.state} (was ${before.state})`, fields: { state: now.state, previous: before.state, vmId: vm.id } });
      } else if (now.error !== "" && now.error !== before.error) {
        events.push({ kind: "vm.error", object: `vm/${vm.name}`, message: `VM ${vm.name} (${now.state}): ${now.error}`, fields: { state: now.state, error: now.error, vmId: vm.id } });
      }
    }
    for (const id of this.seen.keys()) if (!present.has(id)) this.seen.delete(id);
    return events;
  }
}
