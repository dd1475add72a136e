// What the agent sets up before QEMU, with a recording iproute2 runner and a temporary data
// directory: the CD-ROM resolved through the injected resolver and refused when missing, the
// OVMF variable store copied once from the template beside the code image, the seed written,
// taps created for bridged NICs only and removed again when a later one fails.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { VmRecord } from "../vm/vm-model.ts";
import { NetError, type NetRunner } from "./net/bridge.ts";
import { tapName } from "./net/tap.ts";
import { ovmfVarsTemplate, prepareVmDevices, VmPrepareError } from "./vm-prepare.ts";
import { ovmfVarsPath, vmPaths } from "./vm-spec.ts";

const dir = mkdtempSync(join(tmpdir(), "trivet-prepare-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const id = "5f0c7c2e-8d1a-4b7e-9c3f-2a6d8e4b1c90";
const vm = (spec: Partial<VmRecord["spec"]>): VmRecord => ({
  id, name: "web1", nodeId: 1, desiredState: "running", stopMode: "acpi", desiredIndex: 1, createdAtMs: 1, updatedAtMs: 1, description: "", specIndex: 1,
  pendingFields: [], action: null, actionIndex: 0,
  spec: {
    vcpus: 1, memoryMiB: 64, machineType: "pc-i440fx-7.2", cpuModel: "qemu64", firmware: "seabios", accelerator: "tcg", disks: [], nics: [], kernelBoot: null,
    cdrom: null, cloudInit: null, display: "none", bootOrder: ["disk", "cdrom"], ...spec,
  },
});

/** Answers like iproute2 for bridge vmbr0; fails the commands of a tap named in `failTap`. */
function fakeNet(failTap?: string): { run: NetRunner; calls: string[] } {
  const calls: string[] = [];
  const run: NetRunner = async (tool, args) => {
    const line = `${tool} ${args.join(" ")}`;
    calls.push(line);
    if (line === "ip -d -j link show dev vmbr0") return JSON.stringify([{ ifname: "vmbr0", linkinfo: { info_kind: "bridge" } }]);
    if (line.startsWith("ip link del")) throw new NetError(`${line}: Cannot find device`);
    if (failTap && line.startsWith(`ip link set dev ${failTap} master`)) throw new NetError(`${line}: exit 2: RTNETLINK answers: Operation not permitted`);
    return "";
  };
  return { run, calls };
}

describe("prepareVmDevices", () => {
  const paths = vmPaths(dir, id);
  const base = { resolveIso: async (ref: string) => join(dir, "isos", ref.replace(/^\/library\//, "")), ovmfCodePath: null };

  it("resolves the CD-ROM through the injected resolver and says when the ISO is not on the node", async () => {
    mkdirSync(join(dir, "isos"), { recursive: true });
    writeFileSync(join(dir, "isos", "debian.iso"), "iso");
    const { run } = fakeNet();
    const r = await prepareVmDevices(vm({ cdrom: { path: "/library/debian.iso" } }), paths, { ...base, net: run });
    expect(r.resolved.cdromPath).toBe(join(dir, "isos", "debian.iso"));
    await expect(prepareVmDevices(vm({ cdrom: { path: "/library/gone.iso" } }), paths, { ...base, net: run }))
      .rejects.toThrow(`starting VM web1: CD-ROM /library/gone.iso: ISO ${join(dir, "isos", "gone.iso")} does not exist on this node; copy it there or choose another ISO`);
  });

  it("copies the OVMF variable store once and keeps the guest's later changes", async () => {
    const code = join(dir, "OVMF_CODE_4M.fd");
    writeFileSync(code, "code");
    writeFileSync(ovmfVarsTemplate(code), "template vars");
    expect(ovmfVarsTemplate(code)).toBe(join(dir, "OVMF_VARS_4M.fd"));
    const deps = { ...base, ovmfCodePath: code, net: fakeNet().run };
    await prepareVmDevices(vm({ firmware: "ovmf" }), paths, deps);
    expect(readFileSync(ovmfVarsPath(paths), "utf8")).toBe("template vars");
    writeFileSync(ovmfVarsPath(paths), "boot entries the guest wrote");
    await prepareVmDevices(vm({ firmware: "ovmf" }), paths, deps);
    expect(readFileSync(ovmfVarsPath(paths), "utf8")).toBe("boot entries the guest wrote");
    await expect(prepareVmDevices(vm({ firmware: "ovmf" }), paths, { ...deps, ovmfCodePath: null })).rejects.toThrow(/ovmf is not installed on this node/);
  });

  it("writes the seed and creates taps for bridged NICs only", async () => {
    const { run, calls } = fakeNet();
    const seeds: string[] = [];
    const cloudInit = { user: "alice", sshKeys: [], hostname: "", password: null };
    const nics = [{ id: "net0", mac: "52:54:00:00:00:01", bridge: "", vlan: null }, { id: "net1", mac: "52:54:00:00:00:02", bridge: "vmbr0", vlan: null }];
    const r = await prepareVmDevices(vm({ nics, cloudInit }), paths, { ...base, net: run, writeSeed: async (o) => void seeds.push(o.isoPath) });
    expect(seeds).toEqual([join(paths.runDir, "cidata.iso")]);
    expect(r.taps).toEqual([tapName(id, 1)]);
    expect(calls).toContain(`ip tuntap add dev ${tapName(id, 1)} mode tap`);
    expect(calls.some((c) => c.includes(tapName(id, 0)))).toBe(false);
  });

  it("removes the taps it made when a later one fails", async () => {
    const nics = [0, 1].map((i) => ({ id: `net${i}`, mac: `52:54:00:00:00:0${i + 1}`, bridge: "vmbr0", vlan: null }));
    const { run, calls } = fakeNet(tapName(id, 1));
    const err = await prepareVmDevices(vm({ nics }), paths, { ...base, net: run }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VmPrepareError);
    expect((err as Error).message).toMatch(new RegExp(`^starting VM web1: creating tap ${tapName(id, 1)} on bridge vmbr0: .*Operation not permitted`));
    expect(calls.filter((c) => c === `ip link del dev ${tapName(id, 0)}`).length).toBe(2);
  });
});
