// Dashboard: cluster name, leader, quorum and nodes up/down (ClusterService/GetStatus), VMs by
// state (VmService/ListVms), charts of what running VMs take over time, and the alerts and
// recent events of the stream; live from the event stream, with a slow poll as a fallback.
import {
  Alert, Card, CardBody, CardTitle, DescriptionList, DescriptionListDescription, DescriptionListGroup, DescriptionListTerm,
  Gallery, PageSection, Title,
} from "@patternfly/react-core";
import type { ReactNode } from "react";
import type { Vm } from "../api/types.ts";
import { formatTime } from "../app/format.ts";
import { HealthLabel } from "../app/health-label.tsx";
import { hasQuorum, healthCounts } from "../app/health.ts";
import { fallbackRefreshMs, isClusterEvent, usePolled } from "../app/poll.ts";
import { navigate } from "../app/router.ts";
import { useSession } from "../app/session.ts";
import { usageSampleEveryMs } from "../app/usage.ts";
import { vmState } from "../vm/vm-state.ts";
import { RecentEventCards } from "./RecentEvents.tsx";
import { UsageCharts } from "./UsageCharts.tsx";

function Fact({ term, children, id }: { term: string; children: ReactNode; id: string }) {
  return (
    <DescriptionListGroup>
      <DescriptionListTerm>{term}</DescriptionListTerm>
      <DescriptionListDescription data-testid={id}>{children}</DescriptionListDescription>
    </DescriptionListGroup>
  );
}

/** Running, stopped (stopped, shut down or never started) and the rest (paused, crashed, …). */
export function vmCounts(vms: readonly Vm[]): { running: number; stopped: number; other: number } {
  let running = 0, stopped = 0;
  for (const v of vms) {
    const s = vmState(v);
    if (s === "running") running++;
    else if (s === "stopped" || s === "shutdown" || s === "pending") stopped++;
  }
  return { running, stopped, other: vms.length - running - stopped };
}

const nodeLink = (name: string) => `/nodes/${encodeURIComponent(name)}`;

export function DashboardPage() {
  const { client } = useSession();
  const status = usePolled(() => client.call("ClusterService/GetStatus", {}), fallbackRefreshMs, "", isClusterEvent);
  const list = usePolled(() => client.call("VmService/ListVms", {}), usageSampleEveryMs, "", (e) => e.object.startsWith("vm/"));
  const s = status.data;
  const nodes = s?.nodes ?? [];
  const counts = healthCounts(nodes);
  const q = hasQuorum(nodes);
  const leader = nodes.find((n) => n.leader);
  const vms = list.data ? list.data.vms ?? [] : undefined;
  const vc = vmCounts(vms ?? []);
  return (
    <>
      <PageSection><Title headingLevel="h1">Dashboard</Title></PageSection>
      <PageSection>
        {status.error && <Alert variant="warning" isInline title={`Status not refreshed: ${status.error.message}`} className="pf-v6-u-mb-md" />}
        <Gallery hasGutter minWidths={{ default: "280px" }}>
          <Card>
            <CardTitle>Cluster</CardTitle>
            <CardBody>
              <DescriptionList isCompact isHorizontal>
                <Fact term="Name" id="dash-cluster">{s?.clusterName ?? "…"}</Fact>
                <Fact term="Leader" id="dash-leader">{s ? leader?.name ?? "none (election in progress)" : "…"}</Fact>
                <Fact term="Quorum" id="dash-quorum">{s ? `${q.quorum ? "Yes" : "No"}: ${q.votersUp} of ${q.voters} voters up` : "…"}</Fact>
                <Fact term="Term" id="dash-term">{s?.term ?? "…"}</Fact>
              </DescriptionList>
            </CardBody>
          </Card>
          <Card>
            <CardTitle>Nodes</CardTitle>
            <CardBody>
              <DescriptionList isCompact isHorizontal>
                <Fact term="Up" id="dash-nodes-up">{s ? counts.up : "…"}</Fact>
                <Fact term="Down" id="dash-nodes-down">{s ? counts.down : "…"}</Fact>
              </DescriptionList>
              <ul className="pf-v6-u-mt-md" aria-label="Node health">
                {nodes.map((n) => (
                  <li key={n.id} data-testid={`dash-node-${n.name}`} className="pf-v6-u-mb-xs">
                    <a href={nodeLink(n.name)} onClick={(e) => { e.preventDefault(); navigate(nodeLink(n.name)); }}>{n.name}</a>
                    {n.leader ? " (leader)" : ""} <HealthLabel health={n.health} />
                  </li>
                ))}
              </ul>
            </CardBody>
          </Card>
          <Card>
            <CardTitle>Virtual machines</CardTitle>
            <CardBody>
              {list.error && <Alert variant="warning" isInline isPlain title={`Not refreshed: ${list.error.message}`} />}
              <DescriptionList isCompact isHorizontal>
                <Fact term="Running" id="dash-vms-running">{vms ? vc.running : "…"}</Fact>
                <Fact term="Stopped" id="dash-vms-stopped">{vms ? vc.stopped : "…"}</Fact>
                <Fact term="Other" id="dash-vms-other">{vms ? vc.other : "…"}</Fact>
                <Fact term="Total" id="dash-vms-total">{vms ? vms.length : "…"}</Fact>
              </DescriptionList>
            </CardBody>
          </Card>
        </Gallery>
        <UsageCharts vms={vms} nodes={nodes} loadedAtMs={list.loadedAtMs} />
        <Gallery hasGutter minWidths={{ default: "400px" }} className="pf-v6-u-mt-md"><RecentEventCards /></Gallery>
        <p className="pf-v6-u-mt-md pf-v6-u-color-200">
          {s ? `Answered by ${s.nodeName} · refreshed ${formatTime(status.loadedAtMs)}` : "Loading…"}
        </p>
      </PageSection>
    </>
  );
}
