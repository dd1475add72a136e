// What the dashboard charts over time: the vCPUs and memory that running VMs take, per node and
// for the cluster, sampled by the browser while the dashboard is open. (The API reports no host
// capacity or measured load yet: these are the allocations of running VMs, which is what the
// VM API tells.) Pure, so the sums are tested without a browser.
import type { Vm } from "../api/types.ts";

/** How far back the charts reach. */
export const usageWindowMs = 30 * 60_000;
/** How often the open dashboard takes a sample (events add samples in between). */
export const usageSampleEveryMs = 10_000;
/** Samples kept: the window at the sampling rate, twice over for the event-driven ones. */
export const usageMaxSamples = 2 * (usageWindowMs / usageSampleEveryMs);

export interface Use { vcpus: number; memoryMib: number; running: number }

export interface UsageSample {
  atMs: number;
  cluster: Use;
  /** By node name; every node of the cluster, idle ones with zeros. */
  nodes: Record<string, Use>;
}

/** VMs that hold their resources on their node: running, paused, or on their way up. */
export function holdsResources(vm: Vm): boolean {
  const s = vm.status?.state ?? "";
  return s === "running" || s === "paused" || s === "starting";
}

const zero = (): Use => ({ vcpus: 0, memoryMib: 0, running: 0 });

export function usageOf(vms: readonly Vm[], nodeNames: readonly string[], atMs: number): UsageSample {
  const nodes: Record<string, Use> = {};
  for (const n of nodeNames) nodes[n] = zero();
  const cluster = zero();
  for (const vm of vms) {
    if (!holdsResources(vm)) continue;
    const add = (u: Use) => { u.vcpus += vm.vcpus ?? 0; u.memoryMib += Number(vm.memoryMib ?? 0); u.running += 1; };
    add(cluster);
    const node = vm.nodeName ?? "";
    add(nodes[node] ??= zero());
  }
  return { atMs, cluster, nodes };
}

export interface Point { atMs: number; value: number }

/** The points of one measure (`pick`) of the samples within `windowMs` before `nowMs`; `node` undefined: the cluster. */
export function seriesOf(samples: readonly UsageSample[], pick: (u: Use) => number, nowMs: number, windowMs: number, node?: string): Point[] {
  const from = nowMs - windowMs;
  const out: Point[] = [];
  for (const s of samples) {
    if (s.atMs < from) continue;
    const u = node === undefined ? s.cluster : s.nodes[node];
    if (u) out.push({ atMs: s.atMs, value: pick(u) });
  }
  return out;
}
