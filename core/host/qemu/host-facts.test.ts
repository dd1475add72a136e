// Tests of the QEMU host facts parsers on QEMU 7.2's help output.
import { describe, expect, it } from "vitest";
import { parseCpuHelp, parseMachineHelp } from "./host-facts.ts";

const machineHelp = `Supported machines are:
microvm              microvm (i386)
pc                   Standard PC (i440FX + PIIX, 1996) (alias of pc-i440fx-7.2)
pc-i440fx-7.2        Standard PC (i440FX + PIIX, 1996) (default)
pc-i440fx-1.4        Standard PC (i440FX + PIIX, 1996) (deprecated)
q35                  Standard PC (Q35 + ICH9, 2009) (alias of pc-q35-7.2)
pc-q35-7.2           Standard PC (Q35 + ICH9, 2009)
isapc                ISA-only PC
none                 empty machine
`;

const cpuHelp = `Available CPUs:
x86 486                   (alias configured by machine type)
x86 Broadwell-v1          Intel Core Processor (Broadwell)
x86 EPYC                  (alias configured by machine type)
x86 base                  base CPU model type with no features enabled
x86 host                  KVM processor with all supported host features
x86 max                   Enables all features supported by the accelerator in the current host

Recognized CPUID flags:
  3dnow 3dnowext 3dnowprefetch abm ace2 ace2-en acpi adx aes amd-no-ssb
`;

describe("QEMU help parsers", () => {
  it("lists machine types with their aliases, without the empty machine", () => {
    expect(parseMachineHelp(machineHelp)).toEqual(["microvm", "pc", "pc-i440fx-7.2", "pc-i440fx-1.4", "q35", "pc-q35-7.2", "isapc"]);
  });

  it("lists CPU models and stops at the CPUID flags", () => {
    expect(parseCpuHelp(cpuHelp)).toEqual(["486", "Broadwell-v1", "EPYC", "base", "host", "max"]);
  });
});
