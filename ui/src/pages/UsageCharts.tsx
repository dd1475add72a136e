// The dashboard's charts over time: vCPUs and memory held by running VMs, for the cluster and
// each node, sampled by this browser every few seconds while the dashboard is open (kept for the
// last 30 minutes while the console stays open); and the storage card (storage/StorageCard.tsx).
import { Card, CardBody, CardTitle, Gallery } from "@patternfly/react-core";
import { useEffect } from "react";
import type { ClusterNode, Vm } from "../api/types.ts";
import { createRing, useRing } from "../app/ring.ts";
import { seriesOf, usageMaxSamples, usageOf, usageWindowMs, type Use, type UsageSample } from "../app/usage.ts";
import { LineChart, type Series } from "../charts/LineChart.tsx";
import { StorageCard } from "../storage/StorageCard.tsx";

/** Kept across visits to the dashboard while the console is open. */
const samples = createRing<UsageSample>(usageMaxSamples);

export function formatMib(mib: number): string {
  if (mib < 1024) return `${Math.round(mib)} MiB`;
  const gib = mib / 1024;
  return `${gib < 10 ? gib.toFixed(1) : Math.round(gib)} GiB`;
}

const formatCount = (n: number) => String(Math.round(n));

interface Props { vms: readonly Vm[] | undefined; nodes: readonly ClusterNode[]; loadedAtMs: number }

export function UsageCharts({ vms, nodes, loadedAtMs }: Props) {
  const names = nodes.map((n) => n.name).sort();
  const key = names.join(",");
  // One sample per load of the VM list (timed and event-driven), once the nodes are known.
  useEffect(() => {
    if (vms && key !== "" && loadedAtMs > 0) samples.push(usageOf(vms, key.split(","), loadedAtMs));
  }, [vms, key, loadedAtMs]);
  const all = useRing(samples);
  const nowMs = Math.max(Date.now(), all[all.length - 1]?.atMs ?? 0);
  const series = (pick: (u: Use) => number): Series[] => [
    { name: "cluster", points: seriesOf(all, pick, nowMs, usageWindowMs) },
    ...names.map((n) => ({ name: n, points: seriesOf(all, pick, nowMs, usageWindowMs, n) })),
  ];
  return (
    <Gallery hasGutter minWidths={{ default: "280px" }} className="pf-v6-u-mt-md">
      <Card>
        <CardTitle>vCPUs of running VMs</CardTitle>
        <CardBody><LineChart title="vCPUs of running VMs" series={series((u) => u.vcpus)} format={formatCount} nowMs={nowMs} windowMs={usageWindowMs} testId="chart-vcpus" /></CardBody>
      </Card>
      <Card>
        <CardTitle>Memory of running VMs</CardTitle>
        <CardBody><LineChart title="Memory of running VMs" series={series((u) => u.memoryMib)} format={formatMib} nowMs={nowMs} windowMs={usageWindowMs} testId="chart-memory" /></CardBody>
      </Card>
      <StorageCard nodeNames={names} />
    </Gallery>
  );
}
