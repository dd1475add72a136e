// One image: its facts (kind, format, size, state, generation, writer and epoch) and its replicas
// (in sync or why not, heal progress, full heal), with the actions the user's role allows.
// Followed every 5 s while a replica heals (use-storage.ts).
import {
  Alert, Breadcrumb, BreadcrumbItem, Button, PageSection, Progress, ProgressMeasureLocation, ProgressSize, Title, Toolbar,
  ToolbarContent, ToolbarItem,
} from "@patternfly/react-core";
import { Table, Tbody, Td, Th, Thead, Tr } from "@patternfly/react-table";
import { useState } from "react";
import type { Image, ImageReplica } from "../api/types.ts";
import { formatTime } from "../app/format.ts";
import { navigate } from "../app/router.ts";
import { useSession } from "../app/session.ts";
import { ImageActionModal, type ImageAction } from "./ImageModals.tsx";
import { actionLabel, imageActions } from "./ImagesTable.tsx";
import { Facts, ImageStateLabel, Link, ReplicaHealthLabel, volumePath } from "./parts.tsx";
import { formatBytes, healPercent } from "./storage-model.ts";
import { useImage } from "./use-storage.ts";

function HealCell({ r }: { r: ImageReplica }) {
  const pct = healPercent(r);
  if (r.inSync) return <span>—</span>;
  if (pct === undefined) return <span>waiting</span>;
  const text = `${formatBytes(Number(r.healDoneBytes))} of ${formatBytes(Number(r.healTotalBytes))}`;
  return <Progress value={pct} size={ProgressSize.sm} measureLocation={ProgressMeasureLocation.outside} label={`${pct}%`} valueText={text} aria-label={`Heal of the replica on ${r.nodeName}`} />;
}

function ReplicasTable({ replicas }: { replicas: readonly ImageReplica[] }) {
  return (
    <Table aria-label="Replicas" variant="compact">
      <Thead><Tr><Th>Node</Th><Th>In sync</Th><Th>Reason</Th><Th width={30}>Heal</Th><Th>Full heal</Th></Tr></Thead>
      <Tbody>
        {[...replicas].sort((a, b) => a.nodeName.localeCompare(b.nodeName)).map((r) => (
          <Tr key={r.nodeId} data-testid={`replica-row-${r.nodeName}`}>
            <Td dataLabel="Node">{r.nodeName || `node ${r.nodeId}`}</Td>
            <Td dataLabel="In sync">{r.inSync ? "Yes" : "No"}</Td>
            <Td dataLabel="Reason">{r.inSync ? "" : r.reason || "unknown"}</Td>
            <Td dataLabel="Heal"><HealCell r={r} /></Td>
            <Td dataLabel="Full heal">{r.fullHeal ? "Yes (regions unknown: compared by checksum)" : "No"}</Td>
          </Tr>
        ))}
      </Tbody>
    </Table>
  );
}

function Overview({ image: i }: { image: Image }) {
  return (
    <Facts label="Image" rows={[
      ["Volume", <Link key="v" to={volumePath(i.volume)}>{i.volume}</Link>], ["Kind", i.kind], ["Format", i.format],
      ["Size", `${formatBytes(Number(i.sizeBytes))} (${i.sizeBytes} bytes)`], ["State", <ImageStateLabel key="s" state={i.state} />],
      ["Replicas", <ReplicaHealthLabel key="r" image={i} />], ["Generation", i.generation], ["Writer epoch", i.writerEpoch],
      ["Writer", i.writerNodeName ? `${i.writerNodeName}${i.writerClean ? "" : " (not closed cleanly)"}` : `none${i.writerClean ? "" : " (last writer did not close it cleanly)"}`],
      ["Created", formatTime(Number(i.createdAtMs))], ["ID", i.id],
    ]} />
  );
}

export function ImageDetailPage({ volume, name }: { volume: string; name: string }) {
  const { isAdmin, canOperate } = useSession();
  const got = useImage(volume, name);
  const [acting, setActing] = useState<ImageAction>();
  const image = got.data?.image;
  const actions = image ? imageActions(isAdmin, canOperate, image) : [];
  return (
    <>
      <PageSection>
        <Breadcrumb>
          <BreadcrumbItem to="/storage/images" onClick={(e) => { e.preventDefault(); navigate("/storage/images"); }}>Storage</BreadcrumbItem>
          <BreadcrumbItem to={volumePath(volume)} onClick={(e) => { e.preventDefault(); navigate(volumePath(volume)); }}>Volume {volume}</BreadcrumbItem>
          <BreadcrumbItem isActive>{name}</BreadcrumbItem>
        </Breadcrumb>
        <Title headingLevel="h1">Image {name} {image && <ReplicaHealthLabel image={image} />}</Title>
      </PageSection>
      <PageSection>
        {got.error && <Alert variant={got.error.code === "not_found" ? "danger" : "warning"} isInline title={got.error.message} />}
        {actions.length > 0 && (
          <Toolbar>
            <ToolbarContent>
              {actions.map((a) => (
                <ToolbarItem key={a}><Button variant={a === "delete" ? "danger" : "secondary"} onClick={() => setActing(a)}>{actionLabel[a]}</Button></ToolbarItem>
              ))}
            </ToolbarContent>
          </Toolbar>
        )}
        {image && (
          <>
            <Overview image={image} />
            <Title headingLevel="h2" className="pf-v6-u-mt-lg">Replicas</Title>
            <ReplicasTable replicas={image.replicas} />
          </>
        )}
      </PageSection>
      {acting && image && (
        <ImageActionModal action={acting} image={image} onClose={() => setActing(undefined)}
          onChanged={(deleted) => (deleted ? navigate(volumePath(volume)) : got.reload())} />
      )}
    </>
  );
}
