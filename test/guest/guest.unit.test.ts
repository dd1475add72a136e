// The test guest's QEMU command line (pure): TCG, no defaults, optional disk/NIC/QMP as separate arguments.
import { describe, expect, it } from "vitest";
import { guestArgv } from "./guest.ts";

const image = { kernel: "/c/vmlinuz", initrd: "/c/initrd.gz" };

function after(argv: string[], flag: string): string[] {
  return argv.flatMap((a, i) => (a === flag ? [argv[i + 1] ?? ""] : []));
}

describe("guestArgv", () => {
  it("boots the kernel and initramfs under TCG with the serial console on stdio", () => {
    const argv = guestArgv(image, {});
    expect(after(argv, "-accel")).toEqual(["tcg"]);
    expect(argv).toEqual(expect.arrayContaining(["-nodefaults", "-no-user-config", "-no-reboot"]));
    expect(after(argv, "-kernel")).toEqual(["/c/vmlinuz"]);
    expect(after(argv, "-initrd")).toEqual(["/c/initrd.gz"]);
    expect(after(argv, "-append")).toEqual(["console=ttyS0 quiet panic=-1"]);
    expect(after(argv, "-serial")).toEqual(["chardev:serial0"]);
    expect(argv).not.toContain("-netdev");
    expect(argv).not.toContain("-drive");
  });

  it("adds a virtio disk, a virtio NIC with its MAC, guest options and QMP when asked", () => {
    const argv = guestArgv(image, { disk: "/d/a disk.raw", mac: "52:54:00:00:00:01", ip: "10.0.2.15/24", heartbeat: true }, "/r/qmp.sock");
    expect(after(argv, "-drive")).toEqual(["file=/d/a disk.raw,format=raw,if=none,id=disk0,cache=writeback"]);
    expect(after(argv, "-device")).toEqual(["virtio-blk-pci,drive=disk0", "virtio-net-pci,netdev=net0,mac=52:54:00:00:00:01"]);
    expect(after(argv, "-append")).toEqual(["console=ttyS0 quiet panic=-1 trivet.ip=10.0.2.15/24 trivet.heartbeat=1"]);
    expect(after(argv, "-qmp")).toEqual(["unix:/r/qmp.sock,server=on,wait=off"]);
  });
});
