// Virtual machines: a sortable, filterable, paginated table of every VM with its live run state
// (VmService/ListVms every 2 s), bulk start/stop of the selected VMs, and the "New virtual
// machine" wizard. Auditors see the table without any action.
import {
  Alert, Button, PageSection, Pagination, SearchInput, Title, Toolbar, ToolbarContent, ToolbarItem,
} from "@patternfly/react-core";
import { Table, Tbody, Td, Th, Thead, Tr, type ThProps } from "@patternfly/react-table";
import { useState } from "react";
import { ApiCallError } from "../api/client.ts";
import type { Vm } from "../api/types.ts";
import { fallbackRefreshMs, usePolled } from "../app/poll.ts";
import { navigate } from "../app/router.ts";
import { useSession } from "../app/session.ts";
import { filterRows, pageRows, sortRows, type SortDirection, type SortValue } from "../table/sort-filter.ts";
import { VmCreateWizard } from "./VmCreateWizard.tsx";
import { VmStateLabel } from "./VmStateLabel.tsx";
import { actionAllowed, stateRank, vmState } from "./vm-state.ts";

const columns: { title: string; value(v: Vm): SortValue }[] = [
  { title: "Name", value: (v) => v.name },
  { title: "State", value: (v) => stateRank(vmState(v)) },
  { title: "Node", value: (v) => v.nodeName ?? "" },
  { title: "vCPUs", value: (v) => v.vcpus ?? 0 },
  { title: "Memory", value: (v) => Number(v.memoryMib ?? 0) },
];

export const vmsPerPageDefault = 20;

function useBulk(names: readonly string[]) {
  const [selected, setSelected] = useState<ReadonlySet<string>>(new Set());
  const present = new Set(names);
  const live = [...selected].filter((n) => present.has(n));
  return {
    selected: live,
    isSelected: (n: string) => selected.has(n),
    toggle: (n: string, on: boolean) => setSelected((s) => { const x = new Set(s); if (on) x.add(n); else x.delete(n); return x; }),
    setAll: (ns: readonly string[], on: boolean) => setSelected((s) => { const x = new Set(s); for (const n of ns) if (on) x.add(n); else x.delete(n); return x; }),
  };
}

export function VmsPage() {
  const { client, canOperate } = useSession();
  const list = usePolled(() => client.call("VmService/ListVms", {}), fallbackRefreshMs, "", (e) => e.object.startsWith("vm/"));
  const [filter, setFilter] = useState("");
  const [sort, setSort] = useState<{ index: number; direction: SortDirection }>({ index: 0, direction: "asc" });
  const [page, setPage] = useState(1);
  const [perPage, setPerPage] = useState(vmsPerPageDefault);
  const [creating, setCreating] = useState(false);
  const [bulkError, setBulkError] = useState<string>();
  const all = list.data?.vms ?? [];
  const filtered = sortRows(
    filterRows(all, filter, (v) => [v.name, vmState(v), v.nodeName ?? ""]),
    columns[sort.index]!.value, sort.direction,
  );
  const shown = pageRows(filtered, page, perPage);
  const bulk = useBulk(all.map((v) => v.name));
  const byName = new Map(all.map((v) => [v.name, v]));

  const runBulk = async (method: "VmService/StartVm" | "VmService/StopVm", action: "start" | "stop") => {
    const targets = bulk.selected.filter((n) => { const v = byName.get(n); return v && actionAllowed(action, vmState(v)); });
    const results = await Promise.allSettled(targets.map((name) => client.call(method, { name })));
    const failed = results.flatMap((r, i) => (r.status === "rejected" ? [`${targets[i]}: ${r.reason instanceof ApiCallError ? r.reason.message : String(r.reason)}`] : []));
    setBulkError(failed.length ? failed.join("; ") : undefined);
    list.reload();
  };
  const sortBy = (index: number): ThProps["sort"] => ({
    sortBy: { index: sort.index, direction: sort.direction },
    onSort: (_e, i, direction) => setSort({ index: i - (canOperate ? 1 : 0), direction }),
    columnIndex: index + (canOperate ? 1 : 0),
  });
  const pageNames = shown.rows.map((v) => v.name);
  const allOnPage = pageNames.length > 0 && pageNames.every((n) => bulk.isSelected(n));

  return (
    <>
      <PageSection><Title headingLevel="h1">Virtual machines</Title></PageSection>
      <PageSection>
        {list.error && <Alert variant="warning" isInline title={`Virtual machines not refreshed: ${list.error.message}`} />}
        {bulkError && <Alert variant="danger" isInline title={`Some actions were refused: ${bulkError}`} />}
        <Toolbar>
          <ToolbarContent>
            <ToolbarItem>
              <SearchInput aria-label="Filter virtual machines" placeholder="Filter by name, state or node" value={filter}
                onChange={(_e, v) => { setFilter(v); setPage(1); }} onClear={() => setFilter("")} />
            </ToolbarItem>
            {canOperate && (
              <>
                <ToolbarItem><Button onClick={() => setCreating(true)}>New virtual machine</Button></ToolbarItem>
                <ToolbarItem>
                  <Button variant="secondary" isDisabled={bulk.selected.length === 0} onClick={() => void runBulk("VmService/StartVm", "start")}>Start selected</Button>
                </ToolbarItem>
                <ToolbarItem>
                  <Button variant="secondary" isDisabled={bulk.selected.length === 0} onClick={() => void runBulk("VmService/StopVm", "stop")}>Force stop selected</Button>
                </ToolbarItem>
              </>
            )}
            <ToolbarItem variant="pagination">
              <span data-testid="vm-count" className="pf-v6-u-mr-md">{filtered.length} of {all.length} VMs</span>
              <Pagination itemCount={filtered.length} perPage={perPage} page={shown.page} isCompact
                onSetPage={(_e, p) => setPage(p)} onPerPageSelect={(_e, n) => { setPerPage(n); setPage(1); }} />
            </ToolbarItem>
          </ToolbarContent>
        </Toolbar>
        <Table aria-label="Virtual machines" variant="compact" data-testid="vms-table">
          <Thead>
            <Tr>
              {canOperate && <Th aria-label="Select" select={{ onSelect: (_e, on) => bulk.setAll(pageNames, on), isSelected: allOnPage }} />}
              {columns.map((c, i) => <Th key={c.title} sort={sortBy(i)} modifier="nowrap">{c.title}</Th>)}
            </Tr>
          </Thead>
          <Tbody>
            {shown.rows.map((v, i) => (
              <Tr key={v.id} data-testid={`vm-row-${v.name}`}>
                {canOperate && <Td select={{ rowIndex: i, onSelect: (_e, on) => bulk.toggle(v.name, on), isSelected: bulk.isSelected(v.name) }} />}
                <Td dataLabel="Name">
                  <a href={`/vms/${encodeURIComponent(v.name)}`} onClick={(e) => { e.preventDefault(); navigate(`/vms/${encodeURIComponent(v.name)}`); }}>{v.name}</a>
                </Td>
                <Td dataLabel="State"><VmStateLabel state={vmState(v)} /></Td>
                <Td dataLabel="Node">{v.nodeName}</Td>
                <Td dataLabel="vCPUs">{v.vcpus ?? 0}</Td>
                <Td dataLabel="Memory">{v.memoryMib ?? 0} MiB</Td>
              </Tr>
            ))}
            {list.data && shown.rows.length === 0 && (
              <Tr><Td colSpan={columns.length + 1}>{all.length === 0 ? "No virtual machines yet." : `No virtual machine matches “${filter}”.`}</Td></Tr>
            )}
          </Tbody>
        </Table>
      </PageSection>
      {creating && <VmCreateWizard onClose={() => setCreating(false)} onCreated={(name) => { setCreating(false); navigate(`/vms/${encodeURIComponent(name)}`); }} />}
    </>
  );
}
