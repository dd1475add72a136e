// Golden-file tests of the QEMU command-line builder: each testdata/<case>.json holds a VM spec
// and host facts; the expected output is <case>.argv (one argument per line) or <case>.err (the
// error message). `REWRITE=1 npx vitest run core/host/qemu/cmdline.test.ts` regenerates them;
// review every changed file by hand before committing.
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { QemuConfigError, buildQemuArgv } from "./cmdline.ts";
import type { QemuHostFacts, VmSpec } from "./spec.ts";

const testdata = join(dirname(fileURLToPath(import.meta.url)), "testdata");
const rewrite = process.env.REWRITE === "1";

interface GoldenCase {
  about: string;
  expect: "argv" | "error";
  spec: VmSpec;
  facts: QemuHostFacts;
}

function run(c: GoldenCase): { kind: "argv" | "error"; text: string } {
  try {
    return { kind: "argv", text: buildQemuArgv(c.spec, c.facts).join("\n") + "\n" };
  } catch (err) {
    if (!(err instanceof QemuConfigError)) throw err;
    return { kind: "error", text: `${err.field}\n${err.message}\n` };
  }
}

const names = readdirSync(testdata).filter((f) => f.endsWith(".json")).map((f) => f.slice(0, -".json".length)).sort();

describe("buildQemuArgv golden files", () => {
  it("has a case for every device kind and option", () => {
    expect(names.filter((n) => !n.startsWith("error-")).length).toBeGreaterThanOrEqual(20);
    // Every expected-output file belongs to a case, so a renamed case leaves nothing stale.
    for (const f of readdirSync(testdata).filter((f) => !f.endsWith(".json"))) {
      expect(names, `${f} has no .json case`).toContain(f.replace(/\.(argv|err)$/, ""));
    }
  });

  for (const name of names) {
    it(name, () => {
      const c = JSON.parse(readFileSync(join(testdata, `${name}.json`), "utf8")) as GoldenCase;
      const got = run(c);
      expect(got.kind, `${name}: ${c.about}`).toBe(c.expect);
      const file = join(testdata, `${name}.${got.kind === "argv" ? "argv" : "err"}`);
      if (rewrite) {
        writeFileSync(file, got.text);
        rmSync(join(testdata, `${name}.${got.kind === "argv" ? "err" : "argv"}`), { force: true });
      }
      expect(existsSync(file), `${file} missing: run with REWRITE=1 and review it`).toBe(true);
      expect(got.text).toBe(readFileSync(file, "utf8"));
    });
  }
});

describe("buildQemuArgv properties", () => {
  const c = JSON.parse(readFileSync(join(testdata, "full.json"), "utf8")) as GoldenCase;

  it("is deterministic and does not modify its input", () => {
    const before = JSON.stringify(c.spec);
    expect(buildQemuArgv(c.spec, c.facts)).toEqual(buildQemuArgv(c.spec, c.facts));
    expect(JSON.stringify(c.spec)).toBe(before);
  });

  it("names the disk a change of bus breaks", () => {
    const spec: VmSpec = { ...c.spec, disks: c.spec.disks.map((d, i) => (i === 1 ? { ...d, bus: "sata", readonly: true } : d)) };
    expect(() => buildQemuArgv(spec, c.facts)).toThrow(expect.objectContaining({ code: "qemu-config", field: "disks[1].bus" }));
  });

  it("derives node, device and netdev names from the ids, so they are stable across edits", () => {
    const argv = buildQemuArgv(c.spec, c.facts);
    const dataAt = argv.findIndex((a) => a.includes("node-name=drive-data"));
    expect(argv[dataAt + 2]).toContain("drive=drive-data");
    const fewer = buildQemuArgv({ ...c.spec, disks: c.spec.disks.slice(1) }, c.facts);
    expect(fewer).toContain(argv[dataAt]);
  });
});
