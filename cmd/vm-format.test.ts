// Tests of the live-figure columns of `trivet vm list/show`.
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { VmStatusInfoSchema } from "../core/api/gen/trivet/v1/vm_pb.ts";
import { formatCpu, formatMemory, formatUptime } from "./vm-format.ts";

const mib = 1024n * 1024n;
const running = (known: boolean, uptimeMs = 0n) => create(VmStatusInfoSchema, {
  state: "running", statsKnown: known, cpuPercent: 12.345, memoryRssBytes: 181n * mib, guestMemoryBytes: 256n * mib, uptimeMs,
});

describe("vm list figures", () => {
  it("prints the figures of a running VM", () => {
    expect(formatCpu(running(true))).toBe("12.3%");
    expect(formatMemory(running(true))).toBe("181M/256M");
  });

  it("marks unknown figures with ? and a VM that does not run with -", () => {
    expect([formatCpu(running(false)), formatMemory(running(false)), formatUptime(running(false))]).toEqual(["?", "?", "?"]);
    const stopped = create(VmStatusInfoSchema, { state: "stopped", statsKnown: true, cpuPercent: 50 });
    expect([formatCpu(stopped), formatMemory(stopped), formatUptime(undefined)]).toEqual(["-", "-", "-"]);
  });

  it("prints uptime in the two largest units", () => {
    expect(formatUptime(running(true, 45_900n))).toBe("45s");
    expect(formatUptime(running(true, 723_000n))).toBe("12m03s");
    expect(formatUptime(running(true, 11_220_000n))).toBe("3h07m");
    expect(formatUptime(running(true, 187_200_000n))).toBe("2d04h");
  });
});
