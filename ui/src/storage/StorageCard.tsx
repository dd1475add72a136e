// The dashboard's storage card: the cluster's storage used and capacity (each node's file system
// counted once, from the bricks' reports in VolumeService/ListVolumes) with a bar, and the bytes
// used over time, for the cluster and each node, sampled by this browser while the dashboard is
// open. Live on storage events and audited volume/image changes.
import { Alert, Card, CardBody, CardTitle } from "@patternfly/react-core";
import { useEffect } from "react";
import { usePolled } from "../app/poll.ts";
import { createRing, useRing } from "../app/ring.ts";
import { useSession } from "../app/session.ts";
import { seriesOf, usageMaxSamples, usageSampleEveryMs, usageWindowMs, type UsageSample } from "../app/usage.ts";
import { LineChart, type Series } from "../charts/LineChart.tsx";
import { UsageBar } from "./parts.tsx";
import { clusterUse, formatBytes, usedByNode } from "./storage-model.ts";
import { isStorageEvent } from "./use-storage.ts";

/** Kept across visits to the dashboard while the console is open (bytes in the memoryMib slot). */
const samples = createRing<UsageSample>(usageMaxSamples);

const usedSample = (atMs: number, byNode: Record<string, number>, names: readonly string[]): UsageSample => {
  const use = (bytes: number) => ({ vcpus: 0, memoryMib: bytes, running: 0 });
  const nodes = Object.fromEntries(names.map((n) => [n, use(byNode[n] ?? 0)]));
  return { atMs, cluster: use(Object.values(byNode).reduce((a, b) => a + b, 0)), nodes };
};

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`;

export function StorageCard({ nodeNames }: { nodeNames: readonly string[] }) {
  const { client } = useSession();
  const list = usePolled(() => client.call("VolumeService/ListVolumes", {}), usageSampleEveryMs, "", isStorageEvent);
  const volumes = list.data?.volumes;
  const key = [...nodeNames].sort().join(",");
  useEffect(() => {
    // Nothing reported yet is unknown, not zero: no sample then.
    if (volumes && key !== "" && list.loadedAtMs > 0 && clusterUse(volumes).reported > 0) samples.push(usedSample(list.loadedAtMs, usedByNode(volumes), key.split(",")));
  }, [volumes, key, list.loadedAtMs]);
  const all = useRing(samples);
  const nowMs = Math.max(Date.now(), all[all.length - 1]?.atMs ?? 0);
  const series: Series[] = [
    { name: "cluster", points: seriesOf(all, (u) => u.memoryMib, nowMs, usageWindowMs) },
    ...key.split(",").filter(Boolean).map((n) => ({ name: n, points: seriesOf(all, (u) => u.memoryMib, nowMs, usageWindowMs, n) })),
  ];
  const use = clusterUse(volumes ?? []);
  return (
    <Card>
      <CardTitle>Storage use</CardTitle>
      <CardBody data-testid="chart-storage">
        {list.error && <Alert variant="warning" isInline isPlain title={`Not refreshed: ${list.error.message}`} />}
        {!volumes ? "…" : volumes.length === 0 ? <p data-testid="dash-storage">No volume yet: create one on the Storage page.</p> : (
          <>
            <div data-testid="dash-storage"><UsageBar use={use} label="Cluster storage" testId="dash-storage-bar" /></div>
            <p className="pf-v6-u-font-size-sm pf-v6-u-color-200 pf-v6-u-mb-sm">
              {plural(volumes.length, "volume")}; {use.reported} of {plural(use.bricks, "brick")} reported; {formatBytes(use.capacityBytes - use.usedBytes)} free
            </p>
            <LineChart title="Storage used" series={series} format={formatBytes} nowMs={nowMs} windowMs={usageWindowMs} testId="chart-storage-used" />
          </>
        )}
      </CardBody>
    </Card>
  );
}
