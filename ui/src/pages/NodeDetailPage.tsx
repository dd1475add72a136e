// One node: its status and role, what its running VMs take, the VMs placed on it, and for
// Administrators a login shell on it (xterm.js over /api/v1/console/shell/<node>, opened on that
// node's own web console). Live from the event stream, with a slow poll as a fallback.
import {
  Alert, Breadcrumb, BreadcrumbItem, DescriptionList, DescriptionListDescription, DescriptionListGroup, DescriptionListTerm,
  PageSection, Tab, Tabs, TabTitleText, Title,
} from "@patternfly/react-core";
import { Table, Tbody, Td, Th, Thead, Tr } from "@patternfly/react-table";
import { useState, type ReactNode } from "react";
import type { ClusterNode, Vm } from "../api/types.ts";
import { formatDurationMs, formatTime, nodeRoleLabel } from "../app/format.ts";
import { HealthLabel } from "../app/health-label.tsx";
import { fallbackRefreshMs, isClusterEvent, usePolled } from "../app/poll.ts";
import { navigate } from "../app/router.ts";
import { useSession } from "../app/session.ts";
import { usageOf } from "../app/usage.ts";
import { OnNode } from "../console/OnNode.tsx";
import { TerminalConsole } from "../console/TerminalConsole.tsx";
import { consoleUrl } from "../console/urls.ts";
import { VmStateLabel } from "../vm/VmStateLabel.tsx";
import { vmState } from "../vm/vm-state.ts";
import { formatMib } from "./UsageCharts.tsx";

function Facts({ rows, label }: { rows: [string, ReactNode][]; label: string }) {
  return (
    <DescriptionList isHorizontal isCompact aria-label={label}>
      {rows.map(([t, d]) => (
        <DescriptionListGroup key={t}><DescriptionListTerm>{t}</DescriptionListTerm><DescriptionListDescription>{d}</DescriptionListDescription></DescriptionListGroup>
      ))}
    </DescriptionList>
  );
}

function Overview({ node, vms }: { node: ClusterNode; vms: readonly Vm[] }) {
  const use = usageOf(vms, [node.name], Date.now()).nodes[node.name]!;
  return (
    <Facts label="Node" rows={[
      ["Health", <HealthLabel key="h" health={node.health} />],
      ["Role", `${nodeRoleLabel[node.role]}${node.leader ? " (leader)" : ""}`],
      ["Address", node.address],
      ["Last contact", node.lastContactMs === "-1" ? "unknown" : `${formatDurationMs(Number(node.lastContactMs))} ago`],
      ["Last heartbeat", formatTime(Number(node.heartbeatAtMs))],
      ["Applied log index", node.appliedIndex],
      ["VMs placed here", <span key="v" data-testid="node-vm-count">{vms.length}</span>],
      ["Held by running VMs", `${use.running} running: ${use.vcpus} vCPUs, ${formatMib(use.memoryMib)} of memory`],
    ]} />
  );
}

function VmTable({ vms }: { vms: readonly Vm[] }) {
  if (vms.length === 0) return <p>No virtual machine is placed on this node.</p>;
  const href = (v: Vm) => `/vms/${encodeURIComponent(v.name)}`;
  return (
    <Table aria-label="Virtual machines on this node" variant="compact">
      <Thead><Tr><Th>Name</Th><Th>State</Th><Th>vCPUs</Th><Th>Memory</Th></Tr></Thead>
      <Tbody>
        {vms.map((v) => (
          <Tr key={v.id}>
            <Td dataLabel="Name"><a href={href(v)} onClick={(e) => { e.preventDefault(); navigate(href(v)); }}>{v.name}</a></Td>
            <Td dataLabel="State"><VmStateLabel state={vmState(v)} /></Td>
            <Td dataLabel="vCPUs">{v.vcpus ?? 0}</Td>
            <Td dataLabel="Memory">{formatMib(Number(v.memoryMib ?? 0))}</Td>
          </Tr>
        ))}
      </Tbody>
    </Table>
  );
}

function HostShell({ node }: { node: string }) {
  return (
    <OnNode node={node} what={`A shell on ${node}`}>
      <TerminalConsole url={consoleUrl(window.location, "shell", node)} testId="host-shell"
        caption={`Login shell on ${node}, as the user the Trivet daemon runs as. Every session is in the audit log.`}
        closedHint="the shell exited, was idle too long, or the node refused the connection." />
    </OnNode>
  );
}

export function NodeDetailPage({ name }: { name: string }) {
  const { client, isAdmin } = useSession();
  const status = usePolled(() => client.call("ClusterService/GetStatus", {}), fallbackRefreshMs, "", isClusterEvent);
  const list = usePolled(() => client.call("VmService/ListVms", {}), fallbackRefreshMs, "", (e) => e.object.startsWith("vm/"));
  const [tab, setTab] = useState<string | number>("overview");
  const node = status.data?.nodes.find((n) => n.name === name);
  const vms = (list.data?.vms ?? []).filter((v) => v.nodeName === name).sort((a, b) => a.name.localeCompare(b.name));
  return (
    <>
      <PageSection>
        <Breadcrumb>
          <BreadcrumbItem to="/nodes" onClick={(e) => { e.preventDefault(); navigate("/nodes"); }}>Nodes</BreadcrumbItem>
          <BreadcrumbItem isActive>{name}</BreadcrumbItem>
        </Breadcrumb>
        <Title headingLevel="h1">{name} {node && <HealthLabel health={node.health} />}</Title>
      </PageSection>
      <PageSection>
        {status.error && <Alert variant="warning" isInline title={`Not refreshed: ${status.error.message}`} />}
        {status.data && !node && <Alert variant="danger" isInline title={`The cluster has no node named ${name}.`} />}
        {node && (
          <Tabs activeKey={tab} onSelect={(_e, k) => setTab(k)} aria-label="Node" mountOnEnter unmountOnExit>
            <Tab eventKey="overview" title={<TabTitleText>Overview</TabTitleText>}><PageSection><Overview node={node} vms={vms} /></PageSection></Tab>
            <Tab eventKey="vms" title={<TabTitleText>Virtual machines ({vms.length})</TabTitleText>}><PageSection><VmTable vms={vms} /></PageSection></Tab>
            {isAdmin ? <Tab eventKey="shell" title={<TabTitleText>Shell</TabTitleText>}><PageSection><HostShell node={name} /></PageSection></Tab> : null}
          </Tabs>
        )}
      </PageSection>
    </>
  );
}
