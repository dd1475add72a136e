// The Volumes tab: every volume with its replicas, images, nodes and use (summed over the bricks
// that reported), sortable, filterable and paginated; Administrators create volumes and delete
// empty ones (the API refuses a volume that still has images, and says so in the dialog).
import { Button, Pagination, SearchInput, Toolbar, ToolbarContent, ToolbarItem } from "@patternfly/react-core";
import { Table, Tbody, Td, Th, Thead, Tr } from "@patternfly/react-table";
import { useState } from "react";
import type { Volume } from "../api/types.ts";
import { navigate } from "../app/router.ts";
import { useSession } from "../app/session.ts";
import { ConfirmModal, Link, UsageBar, volumePath } from "./parts.tsx";
import { brickUse, replicasText, usedPercent } from "./storage-model.ts";
import { useTableState, type Column } from "./table-state.ts";
import { VolumeCreateModal } from "./VolumeCreateModal.tsx";

const nodesOf = (v: Volume) => v.bricks.map((b) => b.nodeName).sort().join(", ");

const columns: Column<Volume>[] = [
  { title: "Name", value: (v) => v.name },
  { title: "Replicas", value: (v) => v.replicaCount },
  { title: "Images", value: (v) => v.imageCount },
  { title: "Nodes", value: nodesOf },
  { title: "Used / capacity", value: (v) => usedPercent(brickUse(v.bricks)) },
];

export function DeleteVolumeModal({ volume, onClose, onDeleted }: { volume: Volume; onClose(): void; onDeleted(): void }) {
  const { client } = useSession();
  return (
    <ConfirmModal title={`Delete volume ${volume.name}?`} action="Delete" onClose={onClose} onDone={onDeleted}
      run={() => client.call("VolumeService/DeleteVolume", { name: volume.name })}
      body={volume.imageCount > 0
        ? `It still has ${volume.imageCount} image(s): the cluster refuses to delete it until they are deleted.`
        : "Its bricks are removed from every node. This cannot be undone."} />
  );
}

export function VolumesTab({ volumes, loaded, onChanged }: { volumes: readonly Volume[]; loaded: boolean; onChanged(): void }) {
  const { isAdmin } = useSession();
  const t = useTableState(volumes, columns, (v) => [v.name, nodesOf(v)]);
  const [creating, setCreating] = useState(false);
  const [deleting, setDeleting] = useState<Volume>();
  return (
    <>
      <Toolbar>
        <ToolbarContent>
          <ToolbarItem>
            <SearchInput aria-label="Filter volumes" placeholder="Filter by name or node" value={t.filter}
              onChange={(_e, v) => t.setFilter(v)} onClear={() => t.setFilter("")} />
          </ToolbarItem>
          {isAdmin && <ToolbarItem><Button onClick={() => setCreating(true)}>Create volume</Button></ToolbarItem>}
          <ToolbarItem variant="pagination">
            <span className="pf-v6-u-mr-md" data-testid="volume-count">{t.filtered.length} of {volumes.length} volumes</span>
            <Pagination itemCount={t.filtered.length} perPage={t.perPage} page={t.shown.page} isCompact
              onSetPage={(_e, p) => t.setPage(p)} onPerPageSelect={(_e, n) => t.setPerPage(n)} />
          </ToolbarItem>
        </ToolbarContent>
      </Toolbar>
      <Table aria-label="Volumes" variant="compact">
        <Thead>
          <Tr>
            {columns.map((c, i) => <Th key={c.title} sort={t.sortBy(i)} modifier="nowrap" width={i === 4 ? 30 : undefined}>{c.title}</Th>)}
            {isAdmin && <Th screenReaderText="Actions" />}
          </Tr>
        </Thead>
        <Tbody>
          {t.shown.rows.map((v) => (
            <Tr key={v.id} data-testid={`volume-row-${v.name}`}>
              <Td dataLabel="Name"><Link to={volumePath(v.name)}>{v.name}</Link></Td>
              <Td dataLabel="Replicas">{replicasText(v)}</Td>
              <Td dataLabel="Images">{v.imageCount}</Td>
              <Td dataLabel="Nodes">{nodesOf(v)}</Td>
              <Td dataLabel="Used / capacity"><UsageBar use={brickUse(v.bricks)} label={`Use of ${v.name}`} /></Td>
              {isAdmin && (
                <Td isActionCell>
                  <Button variant="secondary" isDanger size="sm" aria-label={`Delete volume ${v.name}`} onClick={() => setDeleting(v)}>Delete</Button>
                </Td>
              )}
            </Tr>
          ))}
          {loaded && t.shown.rows.length === 0 && (
            <Tr><Td colSpan={columns.length + 1}>{volumes.length === 0 ? "No volume yet." : `No volume matches “${t.filter}”.`}</Td></Tr>
          )}
        </Tbody>
      </Table>
      {creating && <VolumeCreateModal onClose={() => setCreating(false)} onCreated={(v) => { setCreating(false); onChanged(); navigate(volumePath(v.name)); }} />}
      {deleting && <DeleteVolumeModal volume={deleting} onClose={() => setDeleting(undefined)} onDeleted={() => { setDeleting(undefined); onChanged(); }} />}
    </>
  );
}
