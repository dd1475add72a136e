// Users: the cluster's local users with their roles. Administrators create and delete users;
// Auditors see the list only (no action buttons; the API refuses their changes anyway). Live from
// the event stream.
import { Alert, AlertActionCloseButton, AlertGroup, Button, Modal, ModalBody, ModalFooter, ModalHeader, PageSection, Title, Toolbar, ToolbarContent, ToolbarItem } from "@patternfly/react-core";
import { Table, Tbody, Td, Th, Thead, Tr } from "@patternfly/react-table";
import { useState } from "react";
import type { ApiCallError } from "../api/client.ts";
import type { User } from "../api/types.ts";
import { formatTime, roleLabel } from "../app/format.ts";
import { fallbackRefreshMs, usePolled, type EventFilter } from "../app/poll.ts";
import { useSession } from "../app/session.ts";
import { sortRows } from "../table/sort-filter.ts";
import { UserCreateModal } from "./UserCreateModal.tsx";

const isUserChange: EventFilter = (e) => e.kind === "audit" && (e.fields.action ?? "").startsWith("UserService.");

function DeleteModal({ user, onClose, onDeleted }: { user: User; onClose(): void; onDeleted(): void }) {
  const { client } = useSession();
  const [error, setError] = useState<string>();
  const remove = () => client.call("UserService/DeleteUser", { username: user.username }).then(onDeleted, (e: ApiCallError) => setError(e.message));
  return (
    <Modal isOpen onClose={onClose} variant="small" aria-labelledby="delete-user-title">
      <ModalHeader title={`Delete user ${user.username}?`} labelId="delete-user-title" titleIconVariant="warning" />
      <ModalBody>
        {error && <Alert variant="danger" isInline title={error} className="pf-v6-u-mb-md" />}
        Their sessions, API tokens and grants are deleted with them, at once on every node.
      </ModalBody>
      <ModalFooter>
        <Button variant="danger" onClick={() => void remove()}>Delete</Button>
        <Button variant="link" onClick={onClose}>Cancel</Button>
      </ModalFooter>
    </Modal>
  );
}

export function UsersPage() {
  const { client, isAdmin, user: me } = useSession();
  // Live: a user created or deleted anywhere (CLI, another browser) shows up through the audit
  // entry the stream announces.
  const users = usePolled(() => client.call("UserService/ListUsers", {}), fallbackRefreshMs, "", isUserChange);
  const [creating, setCreating] = useState(false);
  const [deleting, setDeleting] = useState<User>();
  const [notice, setNotice] = useState<string>();
  const rows = sortRows(users.data?.users ?? [], (u) => u.username, "asc");
  return (
    <>
      <PageSection><Title headingLevel="h1">Users</Title></PageSection>
      <PageSection>
        {notice && (
          <AlertGroup isToast isLiveRegion>
            <Alert variant="success" title={notice} timeout={5000} onTimeout={() => setNotice(undefined)}
              actionClose={<AlertActionCloseButton onClose={() => setNotice(undefined)} />} />
          </AlertGroup>
        )}
        {users.error && <Alert variant="danger" isInline title={`Listing users: ${users.error.message}`} />}
        <Toolbar>
          <ToolbarContent>
            {isAdmin && <ToolbarItem><Button variant="primary" onClick={() => setCreating(true)}>Create user</Button></ToolbarItem>}
            <ToolbarItem variant="pagination">{rows.length} users</ToolbarItem>
          </ToolbarContent>
        </Toolbar>
        <Table aria-label="Users" variant="compact">
          <Thead>
            <Tr><Th>Username</Th><Th>Role</Th><Th>Status</Th><Th>Created</Th>{isAdmin && <Th screenReaderText="Actions" />}</Tr>
          </Thead>
          <Tbody>
            {rows.map((u) => (
              <Tr key={u.id} data-testid={`user-row-${u.username}`}>
                <Td dataLabel="Username">{u.username}</Td>
                <Td dataLabel="Role">{roleLabel[u.role]}</Td>
                <Td dataLabel="Status">{u.disabled ? "Disabled" : "Enabled"}</Td>
                <Td dataLabel="Created">{formatTime(Number(u.createdAtMs))}</Td>
                {isAdmin && (
                  <Td isActionCell>
                    {u.username !== me.username && <Button variant="secondary" isDanger size="sm" aria-label={`Delete user ${u.username}`} onClick={() => setDeleting(u)}>Delete</Button>}
                  </Td>
                )}
              </Tr>
            ))}
          </Tbody>
        </Table>
      </PageSection>
      {creating && <UserCreateModal onClose={() => setCreating(false)} onCreated={(u) => { setCreating(false); setNotice(`User ${u.username} created`); users.reload(); }} />}
      {deleting && <DeleteModal user={deleting} onClose={() => setDeleting(undefined)} onDeleted={() => { setNotice(`User ${deleting.username} deleted`); setDeleting(undefined); users.reload(); }} />}
    </>
  );
}
