// The `--disk` flag of `trivet vm create`: sizes for new node-local disks and VOLUME/IMAGE for
// existing replicated volume images, several joined by commas; anything else is a usage error.
import { describe, expect, it } from "vitest";
import { UsageError } from "./commands.ts";
import { disksOf } from "./vm.ts";

describe("vm create --disk", () => {
  it("takes sizes in MiB and volume images, in order", () => {
    expect(disksOf("8")).toEqual([{ sizeMib: 8n, format: "raw" }]);
    expect(disksOf("vol/web1-root,16")).toEqual([{ volume: "vol", image: "web1-root" }, { sizeMib: 16n, format: "raw" }]);
  });

  it("refuses what is neither", () => {
    for (const bad of ["0", "8G", "vol/", "/img", "vol/a/b", ""]) expect(() => disksOf(bad), bad).toThrow(UsageError);
  });
});
