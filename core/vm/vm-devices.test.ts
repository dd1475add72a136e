// Device fields of the VM model: NIC bridge names and VLANs, the CD-ROM path, cloud-init user,
// keys and hostname, display, firmware and boot order — each bad value refused naming its field
// — and records written before these fields existed read with their defaults.
import { describe, expect, it } from "vitest";
import { checkBootOrder, checkCdrom, checkCloudInit, checkDisplay, checkFirmware } from "./vm-devices.ts";
import { checkVmSpec, normalizeSpecRecord, type VmSpecRecord } from "./vm-model.ts";

const base = { vcpus: 1, memoryMiB: 256, machineType: "pc-i440fx-7.2" };
const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBx4y alice@laptop";

describe("VM device fields", () => {
  it("takes a bridge and VLAN per NIC and refuses bad ones, naming the NIC", () => {
    expect(checkVmSpec({ ...base, nics: [{}, { bridge: "vmbr0", vlan: 42 }] }).nics).toEqual([
      { id: "net0", mac: null, bridge: "", vlan: null }, { id: "net1", mac: null, bridge: "vmbr0", vlan: 42 },
    ]);
    expect(() => checkVmSpec({ ...base, nics: [{ bridge: "vmbr0;rm" }] })).toThrow(/field "nics\[0\].bridge"/);
    expect(() => checkVmSpec({ ...base, nics: [{ bridge: "a-very-long-bridge" }] })).toThrow(/field "nics\[0\].bridge"/);
    expect(() => checkVmSpec({ ...base, nics: [{}, { bridge: "vmbr0", vlan: 4095 }] })).toThrow(/field "nics\[1\].vlan": must be an integer from 1 to 4094/);
    expect(() => checkVmSpec({ ...base, nics: [{ vlan: 10 }] })).toThrow(/field "nics\[0\].vlan": needs a bridge/);
  });

  it("checks the CD-ROM path, cloud-init, display, firmware and boot order", () => {
    expect(checkCdrom({ path: "/isos/debian.iso" })).toEqual({ path: "/isos/debian.iso" });
    expect(checkCdrom({ path: "" })).toBeNull();
    expect(() => checkCdrom({ path: "debian.iso" })).toThrow(/field "cdrom.path": must be an absolute ISO path on the node or "<volume>\/<image>" of the ISO library/);
    expect(checkCloudInit({ user: "alice", sshKeys: [` ${key}\n`] })).toEqual({ user: "alice", sshKeys: [key], hostname: "", password: null });
    expect(() => checkCloudInit({ user: "Root!" })).toThrow(/field "cloudInit.user"/);
    expect(() => checkCloudInit({ user: "alice", sshKeys: ["not a key"] })).toThrow(/field "cloudInit.sshKeys\[0\]"/);
    expect(() => checkCloudInit({ user: "alice", sshKeys: [`${key}\nssh-rsa AAAA x`] })).toThrow(/sshKeys\[0\]/);
    expect(() => checkCloudInit({ user: "alice", hostname: "Bad_Host" })).toThrow(/field "cloudInit.hostname"/);
    expect(() => checkCloudInit({ user: "alice", password: "a\nb" })).toThrow(/field "cloudInit.password"/);
    expect(checkDisplay(undefined)).toBe("none");
    expect(() => checkDisplay("spice")).toThrow(/field "display": must be none or vnc/);
    expect(checkFirmware("ovmf")).toBe("ovmf");
    expect(() => checkFirmware("uefi")).toThrow(/field "firmware"/);
    expect(checkBootOrder(undefined)).toEqual(["disk", "cdrom"]);
    expect(checkBootOrder(["cdrom", "disk", "network"])).toEqual(["cdrom", "disk", "network"]);
    expect(() => checkBootOrder(["disk", "disk"])).toThrow(/field "bootOrder\[1\]": disk is listed twice/);
    expect(() => checkBootOrder(["floppy"])).toThrow(/field "bootOrder\[0\]"/);
  });

  it("reads a record stored before the device fields with their defaults", () => {
    const old = { ...base, cpuModel: "qemu64", firmware: "seabios", accelerator: "auto", disks: [], nics: [{ id: "net0", mac: "52:54:00:00:00:01" }], kernelBoot: null } as unknown as VmSpecRecord;
    expect(normalizeSpecRecord(old)).toMatchObject({ nics: [{ id: "net0", mac: "52:54:00:00:00:01", bridge: "", vlan: null }], cdrom: null, cloudInit: null, display: "none", bootOrder: ["disk", "cdrom"] });
  });
});
