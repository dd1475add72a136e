import { describe, expect, it } from "vitest";
import type { VmRecord, VmStatusRecord } from "../vm/vm-model.ts";
import { VmEventDiff } from "./vm-events.ts";

const vm = (id: string, name: string) => ({ id, name }) as VmRecord;
const status = (vmId: string, state: string, error: string | null = null) => ({ vmId, state, error }) as VmStatusRecord;
const statuses = (...s: VmStatusRecord[]) => new Map(s.map((x) => [x.vmId, x]));

describe("VM events", () => {
  it("reports state changes, not the first sighting", () => {
    const d = new VmEventDiff();
    expect(d.step([vm("a", "web1")], statuses(status("a", "stopped")))).toEqual([]);
    const [e] = d.step([vm("a", "web1")], statuses(status("a", "running")));
    expect(e).toMatchObject({ kind: "vm.state", object: "vm/web1", fields: { state: "running", previous: "stopped" } });
    expect(d.step([vm("a", "web1")], statuses(status("a", "running")))).toEqual([]);
  });

  it("reports a new error of a running VM once, and again when it changes", () => {
    const d = new VmEventDiff();
    d.step([vm("a", "db")], statuses(status("a", "running")));
    const refused = "growing disk disk0 to 16 MiB: QEMU refused: Cannot grow NBD nodes";
    const [e] = d.step([vm("a", "db")], statuses(status("a", "running", refused)));
    expect(e).toMatchObject({ kind: "vm.error", object: "vm/db", fields: { state: "running", error: refused } });
    expect(e!.message).toContain(refused);
    expect(d.step([vm("a", "db")], statuses(status("a", "running", refused)))).toEqual([]);
    expect(d.step([vm("a", "db")], statuses(status("a", "running", null)))).toEqual([]);
    expect(d.step([vm("a", "db")], statuses(status("a", "running", "other")))).toHaveLength(1);
  });

  it("reports a failed start as a state change only, and forgets deleted VMs", () => {
    const d = new VmEventDiff();
    d.step([vm("a", "x")], statuses(status("a", "stopped")));
    const events = d.step([vm("a", "x")], statuses(status("a", "failed", "qemu: could not open disk")));
    expect(events.map((e) => e.kind)).toEqual(["vm.state"]);
    expect(d.step([], statuses())).toEqual([]);
    expect(d.step([vm("a", "x")], statuses(status("a", "running")))).toEqual([]);
  });
});
