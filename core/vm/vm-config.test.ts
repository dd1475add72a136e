// The API edge of the VM devices: a bad device field of CreateVm or UpdateVm is an
// invalid_argument naming the field as the proto spells it, and good ones reach the payload.
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { UpdateVmRequestSchema, VmConfigSchema, VmDiskSchema } from "../api/gen/trivet/v1/vm_pb.ts";
import { ApiError } from "../api/server/errors.ts";
import { deviceSpecOf, deviceUpdateOf, disksOf } from "./vm-config.ts";

function fieldOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof ApiError && err.code === "invalid_argument") return err.field;
    throw err;
  }
  return undefined;
}

describe("VM device fields at the API edge", () => {
  it("names the proto field of a bad value", () => {
    const config = (init: Record<string, unknown>) => create(VmConfigSchema, { vcpus: 1, memoryMib: 64n, ...init });
    expect(fieldOf(() => deviceSpecOf(config({ nics: [{ bridge: "vmbr0", vlan: 5000 }] })))).toBe("config.nics[0].vlan");
    expect(fieldOf(() => deviceSpecOf(config({ cloudInit: { user: "alice", sshKeys: ["bogus"] } })))).toBe("config.cloud_init.ssh_keys[0]");
    expect(fieldOf(() => deviceSpecOf(config({ bootOrder: ["usb"] })))).toBe("config.boot_order[0]");
    expect(fieldOf(() => deviceSpecOf(config({ cdrom: { path: "x.iso" } })))).toBe("config.cdrom.path");
    expect(fieldOf(() => deviceUpdateOf(create(UpdateVmRequestSchema, { name: "a", display: "gtk" })))).toBe("display");
  });

  it("passes good values on in the record's shape; an empty cloud-init user means none", () => {
    expect(deviceSpecOf(create(VmConfigSchema, { nics: [{ bridge: "vmbr0", vlan: 7 }, {}], display: "vnc", firmware: "ovmf", cloudInit: { user: "" } }))).toEqual({
      firmware: "ovmf", display: "vnc", bootOrder: ["disk", "cdrom"], cdrom: null, cloudInit: null,
      nics: [{ mac: null, bridge: "vmbr0", vlan: 7 }, { mac: null, bridge: "", vlan: null }],
    });
    expect(deviceUpdateOf(create(UpdateVmRequestSchema, { name: "a", cdrom: { path: "" }, bootOrder: { devices: ["network"] } }))).toEqual({ cdrom: null, bootOrder: ["network"] });
    expect(deviceUpdateOf(create(UpdateVmRequestSchema, { name: "a" }))).toEqual({});
  });

  it("maps disks to node-local sizes or volume images, refusing a volume image given a size or only one name", () => {
    const disk = (init: Record<string, unknown>) => create(VmDiskSchema, init);
    expect(disksOf([disk({ sizeMib: 8n }), disk({ volume: "vol", image: "web1" })])).toEqual([{ sizeMiB: 8, format: "raw" }, { volume: "vol", image: "web1" }]);
    expect(fieldOf(() => disksOf([disk({ volume: "vol", image: "web1", sizeMib: 8n })]))).toBe("config.disks[0].volume");
    expect(fieldOf(() => disksOf([disk({ sizeMib: 8n }), disk({ volume: "vol" })]))).toBe("config.disks[1].image");
    expect(fieldOf(() => disksOf([disk({ volume: "vol", image: "Web1" })]))).toBe("config.disks[0].image");
    expect(deviceSpecOf(create(VmConfigSchema, { cdrom: { path: "isos/debian-12.iso" } })).cdrom).toEqual({ path: "isos/debian-12.iso" });
  });
});
