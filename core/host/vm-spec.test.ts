// Golden files of the host agent's side of a VM: testdata/<case>.json holds a VM record as the
// replicated state keeps it (and the ISO path the resolver gave, the volume images it names), <case>.out the tap commands the
// agent runs before QEMU and the QEMU argv (one argument per line) from specFromRecord and the
// builder. One case per device option. `REWRITE=1 npx vitest run core/host/vm-spec.test.ts`
// regenerates them; review every changed file by hand.
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { VmRecord } from "../vm/vm-model.ts";
import { normalizeSpecRecord } from "../vm/vm-model.ts";
import { planTaps, tapCommands } from "./net/tap.ts";
import { buildQemuArgv } from "./qemu/cmdline.ts";
import type { QemuHostFacts } from "./qemu/spec.ts";
import { bootIndexes, specFromRecord, vmPaths } from "./vm-spec.ts";
import { resolveVolumeDevices } from "./vm-volumes.ts";
import { nbdSocketPath } from "../../storage/node/layout.ts";
import type { ImageRecord } from "../../storage/volume/model.ts";

const testdata = join(dirname(fileURLToPath(import.meta.url)), "testdata");
const rewrite = process.env.REWRITE === "1";

const facts: QemuHostFacts = {
  qemuVersion: "7.2.22", machineTypes: ["pc", "pc-i440fx-7.2", "q35", "pc-q35-7.2"], accelerators: ["tcg"], cpuModels: [],
  ovmfCodePath: "/usr/share/OVMF/OVMF_CODE_4M.fd", vhostNet: true,
};

interface RecordCase {
  about: string;
  vm: VmRecord;
  cdromPath: string | null;
  /** The volume images of the replicated state, for volume disks and library CD-ROMs ("<volume>/<image>" → record). */
  images?: Record<string, ImageRecord>;
}

function render(c: RecordCase): string {
  const vm = { ...c.vm, spec: normalizeSpecRecord(c.vm.spec) };
  const taps = [...planTaps(vm.id, vm.spec.nics).values()].flatMap(tapCommands).map(([tool, args]) => [tool, ...args].join(" "));
  const volumes = resolveVolumeDevices(vm, vm.nodeId, nbdSocketPath("/var/lib/trivet"), { image: (v, i) => c.images?.[`${v}/${i}`] ?? null, nodeName: (id) => `n${id}` });
  const resolved = { cdromPath: c.cdromPath, cdromExport: volumes.cdromExport, volumeDisks: volumes.disks };
  const argv = buildQemuArgv(specFromRecord(vm, vmPaths("/var/lib/trivet", vm.id), facts, resolved), facts);
  return ["# taps", ...taps, "# argv", ...argv].join("\n") + "\n";
}

const names = readdirSync(testdata).filter((f) => f.endsWith(".json")).map((f) => f.slice(0, -".json".length)).sort();

describe("VM record to host setup and QEMU argv (golden files)", () => {
  it("has a case per device option and no stale output", () => {
    for (const want of ["nic-bridge", "nic-bridge-vlan", "cdrom", "cdrom-library", "volume-disks", "cloud-init", "firmware-ovmf", "display-vnc", "boot-order"]) expect(names).toContain(want);
    for (const f of readdirSync(testdata).filter((f) => f.endsWith(".out"))) expect(names).toContain(f.slice(0, -".out".length));
  });

  for (const name of names) {
    it(name, () => {
      const c = JSON.parse(readFileSync(join(testdata, `${name}.json`), "utf8")) as RecordCase;
      const got = render(c);
      const file = join(testdata, `${name}.out`);
      if (rewrite) writeFileSync(file, got);
      expect(existsSync(file), `${file} missing: run with REWRITE=1 and review it`).toBe(true);
      expect(got, c.about).toBe(readFileSync(file, "utf8"));
    });
  }
});

describe("boot order", () => {
  const c = JSON.parse(readFileSync(join(testdata, "boot-order.json"), "utf8")) as RecordCase;

  it("numbers only the devices the VM has, in its order", () => {
    const vm = { ...c.vm, spec: normalizeSpecRecord(c.vm.spec) };
    expect([...bootIndexes(vm)]).toEqual([["network", 1], ["cdrom", 2], ["disk", 3]]);
    expect([...bootIndexes({ ...vm, spec: { ...vm.spec, cdrom: null } })]).toEqual([["network", 1], ["disk", 2]]);
    expect(bootIndexes({ ...vm, spec: { ...vm.spec, kernelBoot: { kernelPath: "/k", initrdPath: null, append: "" } } }).size).toBe(0);
  });
});
