// Nodes: a sortable, filterable table of the cluster's members (name, address, role, leader,
// health, last contact) from ClusterService/GetStatus, live from the event stream; each name
// opens the node's detail page.
import { Alert, PageSection, SearchInput, Title, Toolbar, ToolbarContent, ToolbarItem } from "@patternfly/react-core";
import { Table, Tbody, Td, Th, Thead, Tr, type ThProps } from "@patternfly/react-table";
import { useState } from "react";
import type { ClusterNode } from "../api/types.ts";
import { formatDurationMs, healthLabel, nodeRoleLabel } from "../app/format.ts";
import { HealthLabel } from "../app/health-label.tsx";
import { fallbackRefreshMs, isClusterEvent, usePolled } from "../app/poll.ts";
import { navigate } from "../app/router.ts";
import { useSession } from "../app/session.ts";
import { filterRows, sortRows, type SortDirection, type SortValue } from "../table/sort-filter.ts";

const healthOrder = { NODE_HEALTH_UNREACHABLE: 0, NODE_HEALTH_DEGRADED: 1, NODE_HEALTH_UNSPECIFIED: 2, NODE_HEALTH_HEALTHY: 3 } as const;

const columns: { title: string; value(n: ClusterNode): SortValue }[] = [
  { title: "Name", value: (n) => n.name },
  { title: "Address", value: (n) => n.address },
  { title: "Role", value: (n) => nodeRoleLabel[n.role] },
  { title: "Leader", value: (n) => n.leader },
  { title: "Health", value: (n) => healthOrder[n.health] },
  { title: "Last contact", value: (n) => Number(n.lastContactMs) },
];

export function NodesPage() {
  const { client } = useSession();
  const status = usePolled(() => client.call("ClusterService/GetStatus", {}), fallbackRefreshMs, "", isClusterEvent);
  const [filter, setFilter] = useState("");
  const [sort, setSort] = useState<{ index: number; direction: SortDirection }>({ index: 0, direction: "asc" });
  const all = status.data?.nodes ?? [];
  const shown = sortRows(
    filterRows(all, filter, (n) => [n.name, n.address, nodeRoleLabel[n.role], healthLabel[n.health], n.leader ? "leader" : ""]),
    columns[sort.index]!.value, sort.direction,
  );
  const sortBy = (index: number): ThProps["sort"] => ({
    sortBy: { index: sort.index, direction: sort.direction },
    onSort: (_e, i, direction) => setSort({ index: i, direction }),
    columnIndex: index,
  });
  return (
    <>
      <PageSection><Title headingLevel="h1">Nodes</Title></PageSection>
      <PageSection>
        {status.error && <Alert variant="warning" isInline title={`Nodes not refreshed: ${status.error.message}`} />}
        <Toolbar>
          <ToolbarContent>
            <ToolbarItem>
              <SearchInput aria-label="Filter nodes" placeholder="Filter nodes" value={filter}
                onChange={(_e, v) => setFilter(v)} onClear={() => setFilter("")} />
            </ToolbarItem>
            <ToolbarItem variant="pagination">{shown.length} of {all.length} nodes</ToolbarItem>
          </ToolbarContent>
        </Toolbar>
        <Table aria-label="Nodes" variant="compact" data-testid="nodes-table">
          <Thead><Tr>{columns.map((c, i) => <Th key={c.title} sort={sortBy(i)} modifier="nowrap">{c.title}</Th>)}</Tr></Thead>
          <Tbody>
            {shown.map((n) => (
              <Tr key={n.id} data-testid={`node-row-${n.name}`}>
                <Td dataLabel="Name">
                  <a href={`/nodes/${encodeURIComponent(n.name)}`} onClick={(e) => { e.preventDefault(); navigate(`/nodes/${encodeURIComponent(n.name)}`); }}>{n.name}</a>
                </Td>
                <Td dataLabel="Address">{n.address}</Td>
                <Td dataLabel="Role">{nodeRoleLabel[n.role]}</Td>
                <Td dataLabel="Leader">{n.leader ? "Leader" : ""}</Td>
                <Td dataLabel="Health"><HealthLabel health={n.health} /></Td>
                <Td dataLabel="Last contact">{n.lastContactMs === "-1" ? "unknown" : `${formatDurationMs(Number(n.lastContactMs))} ago`}</Td>
              </Tr>
            ))}
            {status.data && shown.length === 0 && <Tr><Td colSpan={columns.length}>No node matches “{filter}”.</Td></Tr>}
          </Tbody>
        </Table>
      </PageSection>
    </>
  );
}
