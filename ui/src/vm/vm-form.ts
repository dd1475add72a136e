// The "New virtual machine" form as the wizard keeps it (strings, as typed), its conversion into a
// CreateVm request, and which wizard step shows an API error for a given field path.
import type { Methods } from "../api/types.ts";

export interface VmForm {
  name: string;
  vcpus: string;
  memoryMib: string;
  kernelPath: string;
  initrdPath: string;
  append: string;
  /** Empty: no disk. */
  diskSizeMib: string;
  withNic: boolean;
}

export const emptyVmForm: VmForm = {
  name: "", vcpus: "1", memoryMib: "256", kernelPath: "", initrdPath: "", append: "console=ttyS0", diskSizeMib: "", withNic: true,
};

export type VmFormField = keyof VmForm;

/** The API's field paths (core/vm/vm-service.ts) and the form fields that show them. */
const apiFields: Record<string, VmFormField> = {
  "name": "name",
  "config.vcpus": "vcpus",
  "config.memory_mib": "memoryMib",
  "config.kernel_boot.kernel_path": "kernelPath",
  "config.kernel_boot.initrd_path": "initrdPath",
  "config.kernel_boot.append": "append",
  "config.disks[0].size_mib": "diskSizeMib",
  "config.disks": "diskSizeMib",
  "config.nics": "withNic",
};

export function formFieldOf(apiField: string | undefined): VmFormField | undefined {
  return apiField === undefined ? undefined : apiFields[apiField];
}

export type VmWizardStep = "basics" | "boot" | "storage" | "review";

export function stepOf(field: VmFormField): VmWizardStep {
  if (field === "name" || field === "vcpus" || field === "memoryMib") return "basics";
  if (field === "kernelPath" || field === "initrdPath" || field === "append") return "boot";
  return "storage";
}

const wholeNumber = /^\s*\d+\s*$/;

/** Errors the browser can tell before asking the API: numbers that are not whole numbers. */
export function localErrors(f: VmForm): Partial<Record<VmFormField, string>> {
  const errs: Partial<Record<VmFormField, string>> = {};
  if (!wholeNumber.test(f.vcpus)) errs.vcpus = "must be a whole number";
  if (!wholeNumber.test(f.memoryMib)) errs.memoryMib = "must be a whole number of MiB";
  if (f.diskSizeMib.trim() !== "" && !wholeNumber.test(f.diskSizeMib)) errs.diskSizeMib = "must be a whole number of MiB, or empty for no disk";
  return errs;
}

export function createRequest(f: VmForm, start: boolean): Methods["VmService/CreateVm"]["req"] {
  const kernelPath = f.kernelPath.trim();
  return {
    name: f.name.trim(),
    start,
    config: {
      vcpus: Number(f.vcpus),
      memoryMib: String(Number(f.memoryMib)),
      disks: f.diskSizeMib.trim() === "" ? [] : [{ sizeMib: String(Number(f.diskSizeMib)) }],
      nics: f.withNic ? [{}] : [],
      ...(kernelPath !== "" ? { kernelBoot: { kernelPath, initrdPath: f.initrdPath.trim(), append: f.append.trim() } } : {}),
    },
  };
}
