// Audit log: every mutation made through the API, newest first, a page at a time (the API pages
// by id: each page continues below the last id of the one before), filterable by principal and
// action. The newest page reloads when the event stream announces a new entry (kind "audit").
import { Button, Form, PageSection, TextInput, Title, Toolbar, ToolbarContent, ToolbarItem, Alert } from "@patternfly/react-core";
import { Table, Tbody, Td, Th, Thead, Tr } from "@patternfly/react-table";
import { useState, type FormEvent } from "react";
import { formatTime } from "../app/format.ts";
import { fallbackRefreshMs, usePolled } from "../app/poll.ts";
import { useSession } from "../app/session.ts";

/** Entries per page (the API takes 1–1000). */
export const auditPageSize = 50;

/** The audit log's table with its filter and paging (also a tab of the Tasks & events page). */
export function AuditLog() {
  const { client } = useSession();
  // before-ids of the pages seen so far: the last one is the current page ("0": newest).
  const [pages, setPages] = useState<string[]>(["0"]);
  const [principal, setPrincipal] = useState("");
  const [action, setAction] = useState("");
  const [applied, setApplied] = useState({ principal: "", action: "" });
  const beforeId = pages[pages.length - 1]!;
  const key = `${beforeId}|${applied.principal}|${applied.action}`;
  const page = usePolled(
    () => client.call("AuditService/ListAuditEntries", { pageSize: auditPageSize, beforeId, principal: applied.principal, actionPrefix: applied.action }),
    fallbackRefreshMs, key,
    // Only the newest page follows the stream: an older page would shift under the reader.
    (e) => e.kind === "audit" && beforeId === "0",
  );
  const apply = (e: FormEvent) => {
    e.preventDefault();
    setApplied({ principal: principal.trim(), action: action.trim() });
    setPages(["0"]);
  };
  const next = page.data?.nextBeforeId ?? "0";
  const entries = page.data?.entries ?? [];
  return (
    <>
        {page.error && <Alert variant="danger" isInline title={`Reading the audit log: ${page.error.message}`} />}
        <Form onSubmit={apply} aria-label="Filter the audit log">
          <Toolbar>
            <ToolbarContent>
              <ToolbarItem><TextInput aria-label="Principal" placeholder="Principal (username)" value={principal} onChange={(_e, v) => setPrincipal(v)} /></ToolbarItem>
              <ToolbarItem><TextInput aria-label="Action starts with" placeholder="Action (e.g. UserService.)" value={action} onChange={(_e, v) => setAction(v)} /></ToolbarItem>
              <ToolbarItem><Button type="submit" variant="secondary">Filter</Button></ToolbarItem>
              <ToolbarItem variant="pagination">
                <Button variant="secondary" isDisabled={pages.length <= 1} onClick={() => setPages(pages.slice(0, -1))}>Newer</Button>{" "}
                <span className="pf-v6-u-mx-sm">Page {pages.length}</span>
                <Button variant="secondary" isDisabled={next === "0"} onClick={() => setPages([...pages, next])}>Older</Button>
              </ToolbarItem>
            </ToolbarContent>
          </Toolbar>
        </Form>
        <Table aria-label="Audit log" variant="compact">
          <Thead><Tr><Th>Time</Th><Th>Principal</Th><Th>Action</Th><Th>Object</Th><Th>Result</Th></Tr></Thead>
          <Tbody>
            {entries.map((e) => (
              <Tr key={e.id}>
                <Td dataLabel="Time">{formatTime(Number(e.atMs))}</Td>
                <Td dataLabel="Principal">{e.principal}</Td>
                <Td dataLabel="Action">{e.action}</Td>
                <Td dataLabel="Object">{e.object}</Td>
                <Td dataLabel="Result">{e.result}</Td>
              </Tr>
            ))}
            {page.data && entries.length === 0 && <Tr><Td colSpan={5}>No entries.</Td></Tr>}
          </Tbody>
        </Table>
    </>
  );
}

export function AuditPage() {
  return (
    <>
      <PageSection><Title headingLevel="h1">Audit log</Title></PageSection>
      <PageSection><AuditLog /></PageSection>
    </>
  );
}
