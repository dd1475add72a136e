// Dashboard: cluster name, leader, quorum and nodes up/down from ClusterService/GetStatus,
// refreshed every few seconds. VM counts and resource charts arrive with the VM and storage
// APIs (issues 5 and 6).
import {
  Alert, Card, CardBody, CardTitle, DescriptionList, DescriptionListDescription, DescriptionListGroup, DescriptionListTerm,
  Gallery, PageSection, Title,
} from "@patternfly/react-core";
import type { ReactNode } from "react";
import { formatTime } from "../app/format.ts";
import { HealthLabel } from "../app/health-label.tsx";
import { hasQuorum, healthCounts } from "../app/health.ts";
import { fallbackRefreshMs, isClusterEvent, usePolled } from "../app/poll.ts";
import { useSession } from "../app/session.ts";

function Fact({ term, children, id }: { term: string; children: ReactNode; id: string }) {
  return (
    <DescriptionListGroup>
      <DescriptionListTerm>{term}</DescriptionListTerm>
      <DescriptionListDescription data-testid={id}>{children}</DescriptionListDescription>
    </DescriptionListGroup>
  );
}

export function DashboardPage() {
  const { client } = useSession();
  const status = usePolled(() => client.call("ClusterService/GetStatus", {}), fallbackRefreshMs, "", isClusterEvent);
  const s = status.data;
  const nodes = s?.nodes ?? [];
  const counts = healthCounts(nodes);
  const q = hasQuorum(nodes);
  const leader = nodes.find((n) => n.leader);
  return (
    <>
      <PageSection><Title headingLevel="h1">Dashboard</Title></PageSection>
      <PageSection>
        {status.error && <Alert variant="warning" isInline title={`Status not refreshed: ${status.error.message}`} className="pf-v6-u-mb-md" />}
        <Gallery hasGutter minWidths={{ default: "280px" }}>
          <Card>
            <CardTitle>Cluster</CardTitle>
            <CardBody>
              <DescriptionList isCompact>
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
              <DescriptionList isCompact>
                <Fact term="Up" id="dash-nodes-up">{s ? counts.up : "…"}</Fact>
                <Fact term="Down" id="dash-nodes-down">{s ? counts.down : "…"}</Fact>
              </DescriptionList>
              <ul className="pf-v6-u-mt-md" aria-label="Node health">
                {nodes.map((n) => (
                  <li key={n.id} data-testid={`dash-node-${n.name}`} className="pf-v6-u-mb-xs">
                    {n.name}{n.leader ? " (leader)" : ""} <HealthLabel health={n.health} />
                  </li>
                ))}
              </ul>
            </CardBody>
          </Card>
          <Card>
            <CardTitle>Virtual machines</CardTitle>
            <CardBody>Counts of running and stopped VMs appear here with the VM API (issue 5).</CardBody>
          </Card>
          <Card>
            <CardTitle>Storage</CardTitle>
            <CardBody>Volume health and use appear here with the storage API (issue 6).</CardBody>
          </Card>
        </Gallery>
        <p className="pf-v6-u-mt-md pf-v6-u-color-200">
          {s ? `Answered by ${s.nodeName} · refreshed ${formatTime(status.loadedAtMs)}` : "Loading…"}
        </p>
      </PageSection>
    </>
  );
}
