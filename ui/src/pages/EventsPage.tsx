// Tasks and events: the cluster's event stream as this browser has seen it since sign-in (every
// kind, live, filterable by kind and text), and the audit log for those who may read it. The API
// has no long-running tasks yet: the tasks section says so rather than invent any.
import {
  Alert, FormSelect, FormSelectOption, Label, PageSection, Pagination, SearchInput, Tab, Tabs, TabTitleText, Title, Toolbar,
  ToolbarContent, ToolbarItem,
} from "@patternfly/react-core";
import { Table, Tbody, Td, Th, Thead, Tr } from "@patternfly/react-table";
import { useState } from "react";
import { eventLogMaxEvents, isAlert, useEventLog } from "../api/event-log.ts";
import type { ApiEvent } from "../api/events.ts";
import { formatTime } from "../app/format.ts";
import { useSession } from "../app/session.ts";
import { filterRows, pageRows } from "../table/sort-filter.ts";
import { AuditLog } from "./AuditPage.tsx";

/** The kinds the API documents (events.proto, core/cluster/event-sources.ts); others seen are added. */
export const knownEventKinds = ["vm.state", "vm.error", "node.health", "cluster.leader", "audit", "task.progress", "alert"] as const;

export const eventsPerPageDefault = 50;

/** Kinds offered in the filter: the documented ones, then any other seen, in order. */
export function kindsOf(events: readonly ApiEvent[]): string[] {
  const kinds: string[] = [...knownEventKinds];
  for (const e of events) if (!kinds.includes(e.kind)) kinds.push(e.kind);
  return kinds;
}

function EventTable() {
  const log = useEventLog();
  const [kind, setKind] = useState("");
  const [text, setText] = useState("");
  const [page, setPage] = useState(1);
  const [perPage, setPerPage] = useState(eventsPerPageDefault);
  const newest = [...log].reverse();
  const ofKind = kind === "" ? newest : newest.filter((e) => e.kind === kind);
  const shown = filterRows(ofKind, text, (e) => [e.object, e.message, ...Object.values(e.fields)]);
  const rows = pageRows(shown, page, perPage);
  return (
    <>
      <Toolbar>
        <ToolbarContent>
          <ToolbarItem>
            <FormSelect aria-label="Event kind" value={kind} onChange={(_e, v) => { setKind(v); setPage(1); }}>
              <FormSelectOption value="" label="All kinds" />
              {kindsOf(log).map((k) => <FormSelectOption key={k} value={k} label={k} />)}
            </FormSelect>
          </ToolbarItem>
          <ToolbarItem>
            <SearchInput aria-label="Filter events" placeholder="Filter events" value={text}
              onChange={(_e, v) => { setText(v); setPage(1); }} onClear={() => setText("")} />
          </ToolbarItem>
          <ToolbarItem variant="pagination">
            <span data-testid="event-count" className="pf-v6-u-mr-md">{shown.length} of {log.length} events</span>
            <Pagination itemCount={shown.length} perPage={perPage} page={rows.page} isCompact
              onSetPage={(_e, p) => setPage(p)} onPerPageSelect={(_e, n) => { setPerPage(n); setPage(1); }} />
          </ToolbarItem>
        </ToolbarContent>
      </Toolbar>
      <Table aria-label="Events" variant="compact" data-testid="events-table">
        <Thead><Tr><Th>Time</Th><Th>Kind</Th><Th>Object</Th><Th>Message</Th></Tr></Thead>
        <Tbody>
          {rows.rows.map((e) => (
            <Tr key={`${e.id}-${e.timeMs}-${e.kind}-${e.object}`} data-kind={e.kind}>
              <Td dataLabel="Time" modifier="nowrap">{formatTime(e.timeMs)}</Td>
              <Td dataLabel="Kind">{e.kind}{isAlert(e) && <Label color="red" isCompact className="pf-v6-u-ml-sm">alert</Label>}</Td>
              <Td dataLabel="Object">{e.object}</Td>
              <Td dataLabel="Message">{e.message}</Td>
            </Tr>
          ))}
          {rows.rows.length === 0 && (
            <Tr><Td colSpan={4}>{log.length === 0 ? "No event since you signed in: events appear here as they happen." : "No event matches the filter."}</Td></Tr>
          )}
        </Tbody>
      </Table>
      <p className="pf-v6-u-mt-sm pf-v6-u-color-200">The newest {eventLogMaxEvents} events seen by this browser since sign-in; the audit log keeps every change for good.</p>
    </>
  );
}

export function EventsPage() {
  const { isAdmin, user } = useSession();
  const [tab, setTab] = useState<string | number>("events");
  const mayAudit = isAdmin || user.role === "ROLE_AUDITOR";
  return (
    <>
      <PageSection><Title headingLevel="h1">Tasks and events</Title></PageSection>
      <PageSection>
        <Alert variant="info" isInline isPlain title="Tasks: the cluster reports no long-running tasks yet" data-testid="tasks-none" className="pf-v6-u-mb-md">
          VM operations complete within their API call. Task progress will be listed here once the API reports tasks.
        </Alert>
        <Tabs activeKey={tab} onSelect={(_e, k) => setTab(k)} aria-label="Tasks and events" mountOnEnter unmountOnExit>
          <Tab eventKey="events" title={<TabTitleText>Events</TabTitleText>}><PageSection padding={{ default: "noPadding" }} className="pf-v6-u-pt-md"><EventTable /></PageSection></Tab>
          {mayAudit ? <Tab eventKey="audit" title={<TabTitleText>Audit log</TabTitleText>}><PageSection padding={{ default: "noPadding" }} className="pf-v6-u-pt-md"><AuditLog /></PageSection></Tab> : null}
        </Tabs>
      </PageSection>
    </>
  );
}
