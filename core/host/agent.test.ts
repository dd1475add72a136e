// The host agent's pure parts: what it does about a VM given its desired state and what it
// observes, the status word it reports, and the QEMU spec it derives from a VM record.
import { describe, expect, it } from "vitest";
import type { VmRecord } from "../vm/vm-model.ts";
import { decideAction, reportedState, specFromRecord, vmPaths } from "./agent.ts";

const vm = (desiredState: VmRecord["desiredState"], stopMode: VmRecord["stopMode"] = "acpi", desiredIndex = 10) => ({ desiredState, stopMode, desiredIndex });

describe("decideAction", () => {
  it("starts a stopped VM once per desired-state change", () => {
    expect(decideAction(vm("running"), { alive: false, state: null, actedIndex: 9 })).toBe("start");
    // Acted on index 10 already: the guest powered off by itself; not started again.
    expect(decideAction(vm("running"), { alive: false, state: "shutdown", actedIndex: 10 })).toBe("none");
    expect(decideAction(vm("paused"), { alive: false, state: null, actedIndex: 0 })).toBe("start-paused");
  });

  it("pauses, resumes and stops a running VM as asked", () => {
    expect(decideAction(vm("paused"), { alive: true, state: "running", actedIndex: 10 })).toBe("pause");
    expect(decideAction(vm("running"), { alive: true, state: "paused", actedIndex: 10 })).toBe("resume");
    expect(decideAction(vm("running"), { alive: true, state: "running", actedIndex: 10 })).toBe("none");
    expect(decideAction(vm("stopped"), { alive: true, state: "running", actedIndex: 10 })).toBe("shutdown");
    expect(decideAction(vm("stopped", "force"), { alive: true, state: "paused", actedIndex: 10 })).toBe("force-stop");
    expect(decideAction(vm("stopped", "force"), { alive: false, state: "stopped", actedIndex: 10 })).toBe("none");
  });
});

describe("reportedState", () => {
  it("says stopped without a runtime, starting while one is being started, failed after a failed start", () => {
    expect(reportedState(undefined, null, false)).toBe("stopped");
    expect(reportedState(undefined, null, true)).toBe("starting");
    expect(reportedState(undefined, "qemu-system-x86_64: -m 99999999M: cannot set up guest memory", false)).toBe("failed");
  });
});

describe("specFromRecord", () => {
  const record: VmRecord = {
    id: "0b8e2a4e-8f0e-4d55-9c1a-6a1f0f3f0d11", name: "web1", nodeId: 2, desiredState: "running", stopMode: "acpi", desiredIndex: 7, createdAtMs: 1, updatedAtMs: 1,
    description: "", specIndex: 7, pendingFields: [], action: null, actionIndex: 0,
    spec: {
      vcpus: 2, memoryMiB: 512, machineType: "pc-i440fx-7.2", cpuModel: "qemu64", firmware: "seabios", accelerator: "auto",
      disks: [{ id: "disk0", sizeMiB: 64, format: "qcow2" }], nics: [{ id: "net0", mac: "52:54:00:00:00:50", bridge: "", vlan: null }], kernelBoot: null,
      cdrom: null, cloudInit: null, display: "none", bootOrder: ["disk", "cdrom"],
    },
  };

  it("puts sockets, pidfile and disks under the node's data dir and picks the accelerator", () => {
    const paths = vmPaths("/var/lib/trivet", record.id);
    const tcg = specFromRecord(record, paths, { accelerators: ["tcg"] });
    expect(tcg.accelerator).toBe("tcg");
    expect(tcg.qmpSocketPath).toBe(`/var/lib/trivet/run/${record.id}/qmp.sock`);
    expect(tcg.serial).toEqual({ socketPath: `/var/lib/trivet/run/${record.id}/serial.sock` });
    expect(tcg.disks[0]).toMatchObject({ source: { kind: "file", path: `/var/lib/trivet/images/${record.id}/disk0.qcow2`, format: "qcow2" }, bootIndex: 1 });
    expect(tcg.nics[0]).toMatchObject({ mac: "52:54:00:00:00:50", model: "virtio-net" });
    expect(specFromRecord(record, paths, { accelerators: ["kvm", "tcg"] }).accelerator).toBe("kvm");
    expect(specFromRecord({ ...record, spec: { ...record.spec, accelerator: "tcg" } }, paths, { accelerators: ["kvm", "tcg"] }).accelerator).toBe("tcg");
  });
});
