// The VM state module on its own: payload checks naming the field, the apply's re-checks
// (unique name, memory within the largest node, machine type known on the node), MACs
// allocated from the Raft index and unique, status reports only for the owning node, and
// placement on the least-loaded node that fits; updates pending while QEMU runs and cleared by
// the report of a start from the new spec, power action requests, and disks kept on delete.
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import type { CommandResult } from "../state/apply.ts";
import { migrate } from "../state/migrations.ts";
import type { ApplyContext } from "../state/modules.ts";
import { macFromNumber, placeVm } from "./vm-model.ts";
import { assignedMemoryMiB, keptDiskVmIds, listVmHosts, listVms, listVmStatus, vmModule } from "./vm-module.ts";

function open() {
  const db = new Database(":memory:");
  migrate(db);
  let index = 0;
  const run = (name: string, payload: unknown): CommandResult => {
    const spec = vmModule.commands[name]!;
    const ctx: ApplyContext = { db, index: ++index, atMs: 1000 + index, clientId: "c", prepare: (sql) => db.prepare(sql) };
    return spec.apply(ctx, spec.validate(payload));
  };
  return { db, run };
}

const host = (nodeId: number, memoryMiB: number, bridges: string[] = []) => ({ nodeId, memoryMiB, cpus: 4, machineTypes: ["pc", "pc-i440fx-7.2"], accelerators: ["tcg"], bridges });
const uuid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;
const spec = { vcpus: 1, memoryMiB: 256, machineType: "pc-i440fx-7.2", nics: [{}, { mac: "52:54:00:aa:bb:cc" }] };

describe("vm module", () => {
  it("checks payloads before proposal, naming the field", () => {
    const v = vmModule.commands["vm.create"]!.validate;
    const base = { id: uuid(1), name: "web1", nodeId: 1, spec };
    expect(() => v({ ...base, name: "Web_1" })).toThrow(/field "name"/);
    expect(() => v({ ...base, spec: { ...spec, vcpus: 65 } })).toThrow(/field "vcpus" must be an integer from 1 to 64/);
    expect(() => v({ ...base, spec: { ...spec, memoryMiB: 8 } })).toThrow(/field "memoryMiB"/);
    expect(() => v({ ...base, spec: { ...spec, machineType: "q35" } })).toThrow(/field "machineType"/);
    expect(() => v({ ...base, spec: { ...spec, nics: [{ mac: "52:54:00:zz:00:01" }] } })).toThrow(/field "nics\[0\].mac"/);
    expect(() => v({ ...base, spec: { ...spec, nics: [{ mac: "01:00:5e:00:00:01" }] } })).toThrow(/multicast/);
  });

  it("creates a VM with allocated unique MACs and refuses duplicates, oversized memory and unknown machine types", () => {
    const { db, run } = open();
    run("vm.report_host", host(1, 2048));
    run("vm.report_host", host(2, 4096));
    const r = run("vm.create", { id: uuid(1), name: "web1", nodeId: 2, spec });
    expect(r).toEqual({ ok: true, id: uuid(1), nodeId: 2, macs: [macFromNumber(3 * 8), "52:54:00:aa:bb:cc"] });
    expect(run("vm.create", { id: uuid(2), name: "web1", nodeId: 1, spec })).toMatchObject({ ok: false, code: "already_exists", field: "name" });
    expect(run("vm.create", { id: uuid(3), name: "web2", nodeId: 1, spec: { ...spec, nics: [{ mac: "52:54:00:aa:bb:cc" }] } })).toMatchObject({ ok: false, field: "nics[0].mac" });
    expect(run("vm.create", { id: uuid(4), name: "big", nodeId: 1, spec: { ...spec, nics: [], memoryMiB: 5000 } })).toMatchObject({ ok: false, field: "memory_mib" });
    expect(run("vm.create", { id: uuid(5), name: "old", nodeId: 1, spec: { ...spec, nics: [], machineType: "pc-i440fx-2.0" } })).toMatchObject({ ok: false, field: "machine_type" });
    expect(listVms(db).map((v) => v.name)).toEqual(["web1"]);
    expect(assignedMemoryMiB(db).get(2)).toBe(256);
  });

  it("records desired state with its index, status from the owning node only, and deletes everything", () => {
    const { db, run } = open();
    run("vm.report_host", host(1, 2048));
    run("vm.create", { id: uuid(1), name: "web1", nodeId: 1, spec: { ...spec, nics: [] } });
    expect(run("vm.set_desired", { id: uuid(1), desiredState: "running" })).toEqual({ ok: true });
    expect(listVms(db)[0]).toMatchObject({ desiredState: "running", stopMode: "acpi", desiredIndex: 3 });
    const status = { vmId: uuid(1), nodeId: 1, state: "running", pid: 42, startedAtMs: 5, error: null, actedIndex: 3 };
    expect(run("vm.report_status", status)).toEqual({ ok: true });
    expect(run("vm.report_status", { ...status, nodeId: 2 })).toMatchObject({ ok: false, code: "not_found" });
    expect(listVmStatus(db).get(uuid(1))).toMatchObject({ state: "running", pid: 42, nodeId: 1 });
    expect(run("vm.delete", { id: uuid(1) })).toEqual({ ok: true, deleted: true });
    expect(listVmStatus(db).size).toBe(0);
    expect(run("vm.report_status", status)).toMatchObject({ ok: false });
  });

  it("applies updates at once to a stopped VM and as pending fields to a running one, until a start from the new spec reports", () => {
    const { db, run } = open();
    run("vm.report_host", host(1, 2048));
    run("vm.create", { id: uuid(1), name: "web1", nodeId: 1, spec: { ...spec, nics: [] }, description: "a" });
    expect(run("vm.update", { id: uuid(1), vcpus: 2, description: "b" })).toEqual({ ok: true, changed: ["vcpus"], pendingFields: [] });
    expect(listVms(db)[0]).toMatchObject({ description: "b", specIndex: 3, pendingFields: [], spec: { vcpus: 2, memoryMiB: 256 } });
    const status = { vmId: uuid(1), nodeId: 1, state: "running", pid: 42, startedAtMs: 5, error: null, actedIndex: 3, specIndex: 3 };
    run("vm.report_status", status);
    expect(run("vm.update", { id: uuid(1), memoryMiB: 512 })).toMatchObject({ ok: true, pendingFields: ["memory_mib"] });
    expect(run("vm.update", { id: uuid(1), vcpus: 1 })).toMatchObject({ ok: true, pendingFields: ["memory_mib", "vcpus"] });
    expect(run("vm.update", { id: uuid(1), memoryMiB: 4096 })).toMatchObject({ ok: false, field: "memory_mib" });
    expect(() => vmModule.commands["vm.update"]!.validate({ id: uuid(1), vcpus: 0 })).toThrow(/vcpus/);
    // A report of the QEMU started before the update leaves the changes pending; one from the new spec clears them.
    run("vm.report_status", { ...status, state: "paused" });
    expect(listVms(db)[0]!.pendingFields).toEqual(["memory_mib", "vcpus"]);
    run("vm.report_status", { ...status, pid: 43, specIndex: listVms(db)[0]!.specIndex });
    expect(listVms(db)[0]).toMatchObject({ pendingFields: [], spec: { vcpus: 1, memoryMiB: 512 } });
  });

  it("records power action requests with their index and the disks kept on delete", () => {
    const { db, run } = open();
    run("vm.report_host", host(1, 2048));
    run("vm.create", { id: uuid(1), name: "web1", nodeId: 1, spec: { ...spec, nics: [] } });
    expect(run("vm.request_action", { id: uuid(1), action: "reset" })).toEqual({ ok: true, actionIndex: 3 });
    expect(listVms(db)[0]).toMatchObject({ action: "reset", actionIndex: 3 });
    expect(() => vmModule.commands["vm.request_action"]!.validate({ id: uuid(1), action: "halt" })).toThrow(/action/);
    expect(() => vmModule.commands["vm.delete"]!.validate({ id: uuid(1), keptDisks: ["relative.raw"] })).toThrow(/keptDisks/);
    expect(run("vm.delete", { id: uuid(1), keptDisks: ["/d/images/x/disk0.raw"] })).toEqual({ ok: true, deleted: true });
    expect([...keptDiskVmIds(db, 1)]).toEqual([uuid(1)]);
    expect(keptDiskVmIds(db, 2).size).toBe(0);
  });

  it("refuses, with a field error and nothing created, what no node or not the assigned node can run", () => {
    const { db, run } = open();
    run("vm.report_host", host(1, 2048, ["vmbr0"]));
    run("vm.report_host", { ...host(2, 8192), cpus: 2 });
    const create = (name: string, s: Record<string, unknown>, nodeId = 1) => run("vm.create", { id: uuid(name.length), name, nodeId, spec: { ...spec, nics: [], ...s } });
    expect(create("cpus", { vcpus: 5 })).toMatchObject({ ok: false, code: "invalid_argument", field: "vcpus", message: expect.stringMatching(/more than any node has \(most: 4 CPUs\)/) });
    expect(create("cpus2", { vcpus: 3 }, 2)).toMatchObject({ ok: false, field: "vcpus", message: expect.stringMatching(/node 2 has \(2 CPUs\)/) });
    expect(create("mem", { memoryMiB: 9000 })).toMatchObject({ ok: false, field: "memory_mib" });
    expect(create("mem2", { memoryMiB: 4096 }, 1)).toMatchObject({ ok: false, field: "memory_mib", message: expect.stringMatching(/node 1/) });
    expect(create("machine", { machineType: "pc-q35-9.9" })).toMatchObject({ ok: false, field: "machine_type" });
    expect(create("bridge", { nics: [{}, { bridge: "vmbr7" }] })).toMatchObject({ ok: false, field: "nics[1].bridge", message: expect.stringMatching(/bridge vmbr7 does not exist on node 1 \(it has: vmbr0\)/) });
    expect(create("bridge2", { nics: [{ bridge: "vmbr0" }] }, 2)).toMatchObject({ ok: false, field: "nics[0].bridge" });
    expect(() => vmModule.commands["vm.create"]!.validate({ id: uuid(9), name: "mac", nodeId: 1, spec: { ...spec, nics: [{ mac: "52:54:00:00:00" }] } })).toThrow(/field "nics\[0\].mac"/);
    expect(listVms(db)).toEqual([]);
    expect(db.prepare("SELECT count(*) FROM vm_macs").pluck().get()).toBe(0);
    expect(create("ok", { nics: [{ bridge: "vmbr0", vlan: 42 }], cdrom: { path: "/isos/a.iso" }, display: "vnc", firmware: "ovmf" })).toMatchObject({ ok: true });
    expect(listVms(db)[0]!.spec).toMatchObject({ nics: [{ id: "net0", bridge: "vmbr0", vlan: 42 }], cdrom: { path: "/isos/a.iso" }, display: "vnc", firmware: "ovmf", bootOrder: ["disk", "cdrom"] });
  });

  it("updates devices as pending restart fields and refuses an unknown bridge or too many vCPUs without changing anything", () => {
    const { db, run } = open();
    run("vm.report_host", host(1, 2048, ["vmbr0", "vmbr1"]));
    run("vm.create", { id: uuid(1), name: "web1", nodeId: 1, spec: { ...spec, nics: [{ bridge: "vmbr0" }] } });
    const before = listVms(db)[0]!;
    expect(run("vm.update", { id: uuid(1), nics: [{ bridge: "vmbr9" }] })).toMatchObject({ ok: false, field: "nics[0].bridge" });
    expect(run("vm.update", { id: uuid(1), vcpus: 8 })).toMatchObject({ ok: false, field: "vcpus" });
    expect(run("vm.update", { id: uuid(1), nics: [{ bridge: "vmbr1" }, { bridge: "vmbr1" }] })).toMatchObject({ ok: false, field: "nics" });
    expect(() => vmModule.commands["vm.update"]!.validate({ id: uuid(1), display: "sdl" })).toThrow(/field "display"/);
    expect(listVms(db)[0]).toEqual(before);
    run("vm.report_status", { vmId: uuid(1), nodeId: 1, state: "running", pid: 42, startedAtMs: 5, error: null, actedIndex: 3, specIndex: 2 });
    const r = run("vm.update", { id: uuid(1), nics: [{ bridge: "vmbr1", vlan: 7 }], cdrom: { path: "/isos/b.iso" }, display: "vnc", bootOrder: ["cdrom", "disk"], cloudInit: { user: "alice" } });
    expect(r).toEqual({ ok: true, changed: ["nics", "cdrom", "cloud_init", "display", "boot_order"], pendingFields: ["boot_order", "cdrom", "cloud_init", "display", "nics"] });
    expect(listVms(db)[0]!.spec).toMatchObject({ nics: [{ mac: before.spec.nics[0]!.mac, bridge: "vmbr1", vlan: 7 }], cdrom: { path: "/isos/b.iso" }, display: "vnc", bootOrder: ["cdrom", "disk"] });
    expect(run("vm.update", { id: uuid(1), cdrom: null })).toMatchObject({ ok: true, changed: ["cdrom"] });
    expect(listVms(db)[0]!.spec.cdrom).toBeNull();
  });

  it("stores the bridges a node reports and reads reports from before bridges as none", () => {
    const { db, run } = open();
    run("vm.report_host", host(1, 2048, ["vmbr0", "vmbr1"]));
    db.prepare("INSERT INTO vm_hosts (node_id, memory_mib, cpus, machine_types, accelerators, reported_at_ms, images_root) VALUES (2, 1024, 2, '[\"pc-i440fx-7.2\"]', '[\"tcg\"]', 1, '')").run();
    expect(listVmHosts(db).map((h) => [h.nodeId, h.bridges, h.machineTypes])).toEqual([[1, ["vmbr0", "vmbr1"], ["pc", "pc-i440fx-7.2"]], [2, [], ["pc-i440fx-7.2"]]]);
    expect(() => vmModule.commands["vm.report_host"]!.validate({ ...host(1, 2048), bridges: "vmbr0" })).toThrow(/bridges/);
  });

  it("places a VM on the node with the most memory left that fits", () => {
    const hosts = [host(1, 4096), host(2, 4096), host(3, 2048)].map((h) => ({ ...h, reportedAtMs: 0, imagesRoot: "" }));
    expect(placeVm(hosts, new Map(), 512)).toBe(1);
    expect(placeVm(hosts, new Map([[1, 1024]]), 512)).toBe(2);
    expect(placeVm(hosts, new Map([[1, 3800], [2, 3800]]), 512)).toBe(3);
    expect(placeVm(hosts, new Map(), 8192)).toBeNull();
    expect(placeVm(hosts, new Map(), 512, (h) => h.nodeId === 3)).toBe(3);
  });
});
