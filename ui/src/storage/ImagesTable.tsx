// A sortable, filterable, paginated table of images (the Images tab, the ISO library, a volume's
// images), with each image's replica health and a menu of the actions the user's role allows:
// verify (Administrators and Operators), grow and delete (Administrators: storage.manage).
import {
  Dropdown, DropdownItem, DropdownList, MenuToggle, Pagination, SearchInput, Toolbar, ToolbarContent, ToolbarItem,
} from "@patternfly/react-core";
import EllipsisVIcon from "@patternfly/react-icons/dist/esm/icons/ellipsis-v-icon.js";
import { Table, Tbody, Td, Th, Thead, Tr } from "@patternfly/react-table";
import { useState, type ReactNode } from "react";
import type { Image } from "../api/types.ts";
import { useSession } from "../app/session.ts";
import { ImageActionModal, type ImageAction } from "./ImageModals.tsx";
import { ImageStateLabel, imagePath, Link, ReplicaHealthLabel, volumePath } from "./parts.tsx";
import { formatBytes, replicaHealth } from "./storage-model.ts";
import { useTableState, type Column } from "./table-state.ts";

const columns: Column<Image>[] = [
  { title: "Name", value: (i) => i.name },
  { title: "Volume", value: (i) => i.volume },
  { title: "Kind", value: (i) => i.kind },
  { title: "Format", value: (i) => i.format },
  { title: "Size", value: (i) => Number(i.sizeBytes) },
  { title: "State", value: (i) => i.state },
  { title: "Replicas", value: (i) => replicaHealth(i).text },
  { title: "Writer", value: (i) => i.writerNodeName },
];

/** The actions a role may take on an image (the API refuses the others anyway). */
export function imageActions(isAdmin: boolean, canOperate: boolean, image: Image): ImageAction[] {
  const out: ImageAction[] = [];
  if (canOperate && image.state === "ready") out.push("verify");
  if (isAdmin && image.kind === "disk") out.push("resize");
  if (isAdmin) out.push("delete");
  return out;
}

export const actionLabel: Record<ImageAction, string> = { verify: "Verify", resize: "Resize", delete: "Delete" };

function RowActions({ image, onAction }: { image: Image; onAction(a: ImageAction): void }) {
  const { isAdmin, canOperate } = useSession();
  const [open, setOpen] = useState(false);
  const actions = imageActions(isAdmin, canOperate, image);
  if (actions.length === 0) return null;
  return (
    <Dropdown isOpen={open} onOpenChange={setOpen} popperProps={{ position: "right" }}
      toggle={(ref) => <MenuToggle ref={ref} variant="plain" aria-label={`Actions of ${image.name}`} isExpanded={open} onClick={() => setOpen(!open)} icon={<EllipsisVIcon />} />}>
      <DropdownList>
        {actions.map((a) => (
          <DropdownItem key={a} isDanger={a === "delete"} onClick={() => { setOpen(false); onAction(a); }}>{actionLabel[a]}</DropdownItem>
        ))}
      </DropdownList>
    </Dropdown>
  );
}

interface Props {
  images: readonly Image[];
  label: string;
  loaded: boolean;
  empty: string;
  onChanged(): void;
  /** Buttons at the start of the toolbar (create, upload). */
  tools?: ReactNode;
}

export function ImagesTable({ images, label, loaded, empty, onChanged, tools }: Props) {
  const { canOperate } = useSession();
  const t = useTableState(images, columns, (i) => [i.name, i.volume, i.kind, i.state, i.writerNodeName]);
  const [acting, setActing] = useState<{ action: ImageAction; image: Image }>();
  return (
    <>
      <Toolbar>
        <ToolbarContent>
          <ToolbarItem>
            <SearchInput aria-label={`Filter ${label.toLowerCase()}`} placeholder="Filter by name, volume, kind or state" value={t.filter}
              onChange={(_e, v) => t.setFilter(v)} onClear={() => t.setFilter("")} />
          </ToolbarItem>
          {tools}
          <ToolbarItem variant="pagination">
            <span className="pf-v6-u-mr-md" data-testid="image-count">{t.filtered.length} of {images.length} images</span>
            <Pagination itemCount={t.filtered.length} perPage={t.perPage} page={t.shown.page} isCompact
              onSetPage={(_e, p) => t.setPage(p)} onPerPageSelect={(_e, n) => t.setPerPage(n)} />
          </ToolbarItem>
        </ToolbarContent>
      </Toolbar>
      <Table aria-label={label} variant="compact">
        <Thead>
          <Tr>
            {columns.map((c, i) => <Th key={c.title} sort={t.sortBy(i)} modifier="nowrap">{c.title}</Th>)}
            {canOperate && <Th screenReaderText="Actions" />}
          </Tr>
        </Thead>
        <Tbody>
          {t.shown.rows.map((i) => (
            <Tr key={i.id} data-testid={`image-row-${i.volume}-${i.name}`}>
              <Td dataLabel="Name"><Link to={imagePath(i)}>{i.name}</Link></Td>
              <Td dataLabel="Volume"><Link to={volumePath(i.volume)}>{i.volume}</Link></Td>
              <Td dataLabel="Kind">{i.kind}</Td>
              <Td dataLabel="Format">{i.format}</Td>
              <Td dataLabel="Size" modifier="nowrap">{formatBytes(Number(i.sizeBytes))}</Td>
              <Td dataLabel="State"><ImageStateLabel state={i.state} /></Td>
              <Td dataLabel="Replicas"><ReplicaHealthLabel image={i} /></Td>
              <Td dataLabel="Writer">{i.writerNodeName || "none"}</Td>
              {canOperate && <Td isActionCell><RowActions image={i} onAction={(action) => setActing({ action, image: i })} /></Td>}
            </Tr>
          ))}
          {loaded && t.shown.rows.length === 0 && (
            <Tr><Td colSpan={columns.length + 1}>{images.length === 0 ? empty : `No image matches “${t.filter}”.`}</Td></Tr>
          )}
        </Tbody>
      </Table>
      {acting && <ImageActionModal action={acting.action} image={acting.image} onClose={() => setActing(undefined)} onChanged={onChanged} />}
    </>
  );
}
