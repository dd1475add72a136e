// The pure QEMU command-line builder: a VM spec plus host facts in, an argv out. No I/O and no
// host lookups, so the same input always gives the same argv (golden-file tested in
// cmdline.test.ts). One small function per device kind; each names the spec field it rejects.
import { cdromArgs, controllerArgs, diskArgs, nicArgs } from "./devices.ts";
import { QemuConfigError, checkPath, checkSocketPath, keyValues } from "./options.ts";
import type { QemuHostFacts, VmSpec } from "./spec.ts";

export { QemuConfigError } from "./options.ts";

export const vcpusMax = 255;
export const memoryMiBMin = 16;
/** 4 TiB: beyond any host this appliance targets; catches unit mistakes (bytes given as MiB). */
export const memoryMiBMax = 4 * 1024 * 1024;
export const vmNameCharsMax = 63;

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const vmNamePattern = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const cpuModelPattern = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
/** Versioned machine types keep the guest ABI fixed across QEMU upgrades and migrations. */
const pinnedMachinePattern = /^pc-(q35|i440fx)-\d+\.\d+$/;

/** Builds the argv (without the binary name) that starts the VM described by `spec`. */
export function buildQemuArgv(spec: VmSpec, facts: QemuHostFacts): string[] {
  return [
    ...identityArgs(spec),
    ...baseArgs(spec),
    ...machineArgs(spec, facts),
    ...cpuArgs(spec, facts),
    ...memoryArgs(spec),
    ...smpArgs(spec),
    ...firmwareArgs(spec, facts),
    ...kernelBootArgs(spec),
    ...controllerArgs(spec),
    ...diskArgs(spec),
    ...cdromArgs(spec),
    ...nicArgs(spec, facts),
    ...serialArgs(spec),
    ...graphicsArgs(spec),
    ...qmpArgs(spec),
  ];
}

function identityArgs(spec: VmSpec): string[] {
  if (!vmNamePattern.test(spec.name) || spec.name.length > vmNameCharsMax) {
    throw new QemuConfigError("name", `"${spec.name}" is not a valid VM name: use 1-${vmNameCharsMax} lower-case letters, digits and inner dashes`);
  }
  if (!uuidPattern.test(spec.uuid)) throw new QemuConfigError("uuid", `"${spec.uuid}" is not a lower-case RFC 4122 UUID`);
  return ["-name", keyValues([["guest", spec.name], ["debug-threads", "on"]]), "-uuid", spec.uuid];
}

/** Nothing QEMU would add by itself: every device comes from the spec. */
function baseArgs(spec: VmSpec): string[] {
  checkPath("pidFile", spec.pidFile);
  return ["-nodefaults", "-no-user-config", "-display", "none", "-msg", "timestamp=on", "-pidfile", spec.pidFile, "-rtc", "base=utc"];
}

function machineArgs(spec: VmSpec, facts: QemuHostFacts): string[] {
  if (!pinnedMachinePattern.test(spec.machineType)) {
    throw new QemuConfigError("machineType", `"${spec.machineType}" is not a pinned machine type: use a versioned one such as pc-q35-7.2 or pc-i440fx-7.2`);
  }
  if (!facts.machineTypes.includes(spec.machineType)) {
    throw new QemuConfigError("machineType", `${spec.machineType} is not supported by QEMU ${facts.qemuVersion} on this host`);
  }
  if (!facts.accelerators.includes(spec.accelerator)) {
    const usable = facts.accelerators.join(", ") || "none";
    throw new QemuConfigError("accelerator", `${spec.accelerator} is not usable on this host (usable: ${usable})`);
  }
  const pflash: [string, string][] = spec.firmware.kind === "ovmf" ? [["pflash0", "firmware-code"], ["pflash1", "firmware-vars"]] : [];
  return ["-machine", keyValues([["type", spec.machineType], ...pflash]), "-accel", spec.accelerator];
}

function cpuArgs(spec: VmSpec, facts: QemuHostFacts): string[] {
  const model = spec.cpuModel;
  if (model === "host" && spec.accelerator !== "kvm") {
    throw new QemuConfigError("cpuModel", `host needs the kvm accelerator (this VM uses ${spec.accelerator}); use max or qemu64`);
  }
  const builtin = model === "host" || model === "max" || model === "qemu64";
  if (!builtin && (!cpuModelPattern.test(model) || !facts.cpuModels.includes(model))) {
    throw new QemuConfigError("cpuModel", `"${model}" is not a CPU model QEMU ${facts.qemuVersion} knows on this host`);
  }
  return ["-cpu", model];
}

function memoryArgs(spec: VmSpec): string[] {
  const mib = spec.memoryMiB;
  if (!Number.isInteger(mib) || mib < memoryMiBMin || mib > memoryMiBMax) {
    throw new QemuConfigError("memoryMiB", `${mib} is out of range: give a whole number of MiB from ${memoryMiBMin} to ${memoryMiBMax}`);
  }
  return ["-m", `${mib}M`];
}

function smpArgs(spec: VmSpec): string[] {
  const n = spec.vcpus;
  if (!Number.isInteger(n) || n < 1 || n > vcpusMax) {
    throw new QemuConfigError("vcpus", `${n} is out of range: give a whole number from 1 to ${vcpusMax}`);
  }
  return ["-smp", keyValues([["cpus", n], ["sockets", 1], ["cores", n], ["threads", 1]])];
}

/** SeaBIOS is QEMU's built-in default; OVMF is two flash devices (read-only code, per-VM vars). */
function firmwareArgs(spec: VmSpec, facts: QemuHostFacts): string[] {
  if (spec.firmware.kind === "seabios") return [];
  if (facts.ovmfCodePath === null) {
    throw new QemuConfigError("firmware", "ovmf is not installed on this host (install the ovmf package) or use seabios");
  }
  checkPath("firmware.varsPath", spec.firmware.varsPath);
  return [
    "-blockdev", keyValues([["driver", "file"], ["node-name", "firmware-code"], ["filename", facts.ovmfCodePath], ["read-only", "on"]]),
    "-blockdev", keyValues([["driver", "file"], ["node-name", "firmware-vars"], ["filename", spec.firmware.varsPath]]),
  ];
}

function kernelBootArgs(spec: VmSpec): string[] {
  const boot = spec.kernelBoot;
  if (boot === null) return [];
  checkPath("kernelBoot.kernelPath", boot.kernelPath);
  const argv = ["-kernel", boot.kernelPath];
  if (boot.initrdPath !== null) {
    checkPath("kernelBoot.initrdPath", boot.initrdPath);
    argv.push("-initrd", boot.initrdPath);
  }
  if (/[\n\0]/.test(boot.append)) throw new QemuConfigError("kernelBoot.append", "contains a newline or NUL byte");
  if (boot.append !== "") argv.push("-append", boot.append);
  return argv;
}

/** Output before a client connects is dropped (wait=off): QEMU never blocks on a console reader. */
function serialArgs(spec: VmSpec): string[] {
  if (spec.serial === null) return [];
  checkSocketPath("serial.socketPath", spec.serial.socketPath);
  return [
    "-chardev", keyValues([["socket", undefined], ["id", "serial0"], ["path", spec.serial.socketPath], ["server", "on"], ["wait", "off"]]),
    "-serial", "chardev:serial0",
  ];
}

function graphicsArgs(spec: VmSpec): string[] {
  const g = spec.graphics;
  if (g.kind === "none") return [];
  let display: string;
  if (g.listen.kind === "unix") {
    checkSocketPath("graphics.listen.path", g.listen.path);
    display = `unix:${g.listen.path}`;
  } else {
    const { host, display: n } = g.listen;
    if (!/^[0-9a-zA-Z.:-]+$/.test(host)) throw new QemuConfigError("graphics.listen.host", `"${host}" is not an address`);
    if (!Number.isInteger(n) || n < 0 || n > 59535) throw new QemuConfigError("graphics.listen.display", `${n} is not a VNC display number (0-59535)`);
    display = `${host.includes(":") ? `[${host}]` : host}:${n}`;
  }
  return ["-device", keyValues([["VGA", undefined], ["id", "vga"]]), "-vnc", keyValues([[display, undefined]])];
}

/** One QMP client at a time; wait=off so QEMU starts without one (the runtime connects after). */
function qmpArgs(spec: VmSpec): string[] {
  checkSocketPath("qmpSocketPath", spec.qmpSocketPath);
  return [
    "-chardev", keyValues([["socket", undefined], ["id", "qmp"], ["path", spec.qmpSocketPath], ["server", "on"], ["wait", "off"]]),
    "-mon", keyValues([["chardev", "qmp"], ["mode", "control"]]),
  ];
}
