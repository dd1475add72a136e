// The dashboard's usage samples: sums of running VMs per node and cluster, and chart series.
import { describe, expect, it } from "vitest";
import type { Vm } from "../api/types.ts";
import { seriesOf, usageOf, type UsageSample } from "./usage.ts";

const vm = (name: string, node: string, state: string, vcpus: number, mem: number): Vm => ({ id: name, name, nodeName: node, vcpus, memoryMib: String(mem), status: { state } });

describe("usage", () => {
  it("sums the vCPUs and memory of VMs holding resources, per node and for the cluster", () => {
    const s = usageOf([
      vm("a", "n1", "running", 2, 512), vm("b", "n1", "stopped", 8, 8192), vm("c", "n2", "paused", 1, 256),
      vm("d", "n2", "starting", 1, 128), vm("e", "n3", "crashed", 4, 1024),
    ], ["n1", "n2", "n3"], 1000);
    expect(s.cluster).toEqual({ vcpus: 4, memoryMib: 896, running: 3 });
    expect(s.nodes).toEqual({ n1: { vcpus: 2, memoryMib: 512, running: 1 }, n2: { vcpus: 2, memoryMib: 384, running: 2 }, n3: { vcpus: 0, memoryMib: 0, running: 0 } });
  });

  it("keeps the samples within the window, for the cluster or one node", () => {
    const samples: UsageSample[] = [1, 2, 3].map((i) => usageOf([vm("a", "n1", "running", i, 100 * i)], ["n1", "n2"], i * 1000));
    expect(seriesOf(samples, (u) => u.vcpus, 3000, 1500)).toEqual([{ atMs: 2000, value: 2 }, { atMs: 3000, value: 3 }]);
    expect(seriesOf(samples, (u) => u.memoryMib, 3000, 10_000, "n2").map((p) => p.value)).toEqual([0, 0, 0]);
    expect(seriesOf(samples, (u) => u.memoryMib, 3000, 10_000, "n9")).toEqual([]);
  });
});
