// The device flags of `trivet vm create|update`: what reaches the API for each, the keys file
// read line by line, and flags that cannot work together refused before any request.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { UsageError } from "./commands.ts";
import { createDeviceConfig, updateDeviceFields, vlanOf } from "./vm-devices.ts";

const dir = mkdtempSync(join(tmpdir(), "trivet-vmflags-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("vm device flags", () => {
  it("maps create flags onto the VmConfig fields", async () => {
    const keys = join(dir, "keys");
    writeFileSync(keys, "# mine\nssh-ed25519 AAAAC3Nz alice@a\n\nssh-rsa AAAAB3Nz bob@b\n");
    expect(await createDeviceConfig({ cdrom: "/isos/a.iso", firmware: "ovmf", display: "vnc", boot: "cdrom, disk", "ci-user": "alice", "ci-ssh-keys": keys })).toEqual({
      firmware: "ovmf", display: "vnc", bootOrder: ["cdrom", "disk"], cdrom: { path: "/isos/a.iso" },
      cloudInit: { user: "alice", sshKeys: ["ssh-ed25519 AAAAC3Nz alice@a", "ssh-rsa AAAAB3Nz bob@b"], hostname: "", password: "" },
    });
    expect(await createDeviceConfig({})).toEqual({ firmware: "", display: "", bootOrder: [], cdrom: undefined, cloudInit: undefined });
  });

  it("refuses a VLAN without a bridge and cloud-init flags without a user", async () => {
    expect(vlanOf({ vlan: "42" }, "vmbr0")).toBe(42);
    expect(() => vlanOf({ vlan: "42" }, "")).toThrow(UsageError);
    expect(() => vlanOf({ vlan: "x" }, "vmbr0")).toThrow(/--vlan/);
    await expect(createDeviceConfig({ "ci-hostname": "web" })).rejects.toThrow(/--ci-hostname needs --ci-user/);
    await expect(createDeviceConfig({ "ci-user": "a", "ci-ssh-keys": join(dir, "missing") })).rejects.toThrow(/cannot read/);
  });

  it("changes the first NIC on update and keeps the others", async () => {
    const current = [{ bridge: "vmbr0", vlan: 10 }, { bridge: "", vlan: 0 }];
    expect((await updateDeviceFields({ bridge: "vmbr1" }, current)).nics).toEqual([{ bridge: "vmbr1", vlan: 0 }, { bridge: "", vlan: 0 }]);
    expect((await updateDeviceFields({ vlan: "20" }, current)).nics).toEqual([{ bridge: "vmbr0", vlan: 20 }, { bridge: "", vlan: 0 }]);
    expect((await updateDeviceFields({ cdrom: "" }, current))).toMatchObject({ nics: [], cdrom: { path: "" } });
    await expect(updateDeviceFields({ firmware: "ovmf" }, current)).rejects.toThrow(/--firmware cannot be changed/);
    await expect(updateDeviceFields({ bridge: "vmbr0" }, [])).rejects.toThrow(/has no NIC/);
  });
});
