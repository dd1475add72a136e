// The wizard's form: conversion to CreateVm and mapping of API errors to its fields and steps.
import { describe, expect, it } from "vitest";
import { createRequest, emptyVmForm, formFieldOf, localErrors, stepOf } from "./vm-form.ts";

describe("the new-VM form", () => {
  it("builds a CreateVm request with kernel boot, a disk and a NIC", () => {
    const req = createRequest({ ...emptyVmForm, name: " web1 ", vcpus: "2", memoryMib: "512", kernelPath: "/k", initrdPath: "/i", diskSizeMib: "64" }, false);
    expect(req).toEqual({
      name: "web1", start: false,
      config: { vcpus: 2, memoryMib: "512", disks: [{ sizeMib: "64" }], nics: [{}], kernelBoot: { kernelPath: "/k", initrdPath: "/i", append: "console=ttyS0" } },
    });
    expect(createRequest({ ...emptyVmForm, withNic: false }, true).config).toEqual({ vcpus: 1, memoryMib: "256", disks: [], nics: [] });
  });

  it("puts API errors on the field and step that hold them", () => {
    expect(formFieldOf("config.memory_mib")).toBe("memoryMib");
    expect(stepOf(formFieldOf("config.kernel_boot.kernel_path")!)).toBe("boot");
    expect(stepOf(formFieldOf("name")!)).toBe("basics");
    expect(formFieldOf("config.machine_type")).toBeUndefined();
  });

  it("refuses numbers that are not whole before calling the API", () => {
    expect(localErrors({ ...emptyVmForm, vcpus: "two", diskSizeMib: "1.5" })).toEqual({ vcpus: "must be a whole number", diskSizeMib: "must be a whole number of MiB, or empty for no disk" });
    expect(localErrors(emptyVmForm)).toEqual({});
  });
});
