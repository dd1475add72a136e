// One volume: its facts, its bricks (node, directory, capacity, use, last report) and its images;
// Operators verify it and Administrators delete it from here. Live as the storage pages are
// (use-storage.ts).
import { Alert, Breadcrumb, BreadcrumbItem, Button, PageSection, Title } from "@patternfly/react-core";
import { Table, Tbody, Td, Th, Thead, Tr } from "@patternfly/react-table";
import { useState } from "react";
import type { Brick } from "../api/types.ts";
import { formatTime } from "../app/format.ts";
import { navigate } from "../app/router.ts";
import { useSession } from "../app/session.ts";
import { ImagesTable } from "./ImagesTable.tsx";
import { Facts, UsageBar } from "./parts.tsx";
import { brickUse, formatBytes, replicasText } from "./storage-model.ts";
import { useImages, useVolumes } from "./use-storage.ts";
import { VolumeVerifyModal } from "./VolumeVerifyModal.tsx";
import { DeleteVolumeModal } from "./VolumesTab.tsx";

function BricksTable({ bricks }: { bricks: readonly Brick[] }) {
  const reported = (b: Brick) => Number(b.reportedAtMs) !== 0;
  return (
    <Table aria-label="Bricks" variant="compact">
      <Thead><Tr><Th>Node</Th><Th>Path</Th><Th>Capacity</Th><Th>Used</Th><Th>Last report</Th></Tr></Thead>
      <Tbody>
        {[...bricks].sort((a, b) => a.nodeName.localeCompare(b.nodeName)).map((b) => (
          <Tr key={b.nodeId} data-testid={`brick-row-${b.nodeName}`}>
            <Td dataLabel="Node">{b.nodeName || `node ${b.nodeId}`}</Td>
            <Td dataLabel="Path">{b.path || "default"}</Td>
            <Td dataLabel="Capacity">{reported(b) ? formatBytes(Number(b.capacityBytes)) : "—"}</Td>
            <Td dataLabel="Used">{reported(b) ? formatBytes(Number(b.usedBytes)) : "—"}</Td>
            <Td dataLabel="Last report">{formatTime(Number(b.reportedAtMs))}</Td>
          </Tr>
        ))}
      </Tbody>
    </Table>
  );
}

export function VolumeDetailPage({ name }: { name: string }) {
  const { isAdmin, canOperate } = useSession();
  const volumes = useVolumes();
  const images = useImages(name);
  const [deleting, setDeleting] = useState(false);
  const [verifying, setVerifying] = useState(false);
  const v = volumes.data?.volumes.find((x) => x.name === name);
  const reload = () => { volumes.reload(); images.reload(); };
  return (
    <>
      <PageSection>
        <Breadcrumb>
          <BreadcrumbItem to="/storage" onClick={(e) => { e.preventDefault(); navigate("/storage"); }}>Storage</BreadcrumbItem>
          <BreadcrumbItem isActive>Volume {name}</BreadcrumbItem>
        </Breadcrumb>
        <Title headingLevel="h1">Volume {name}</Title>
      </PageSection>
      <PageSection>
        {volumes.error && <Alert variant="warning" isInline title={`Not refreshed: ${volumes.error.message}`} />}
        {volumes.data && !v && <Alert variant="danger" isInline title={`The cluster has no volume named ${name}.`} />}
        {v && (
          <>
            {canOperate && <Button variant="secondary" className="pf-v6-u-mb-md pf-v6-u-mr-sm" onClick={() => setVerifying(true)}>Verify</Button>}
            {isAdmin && <Button variant="danger" className="pf-v6-u-mb-md" onClick={() => setDeleting(true)}>Delete volume</Button>}
            <Facts label="Volume" rows={[
              ["Replicas", replicasText(v)], ["Images", String(v.imageCount)],
              ["Used / capacity", <UsageBar key="u" use={brickUse(v.bricks)} label={`Use of ${v.name}`} testId="volume-usage" />],
              ["Created", formatTime(Number(v.createdAtMs))], ["ID", v.id],
            ]} />
            <Title headingLevel="h2" className="pf-v6-u-mt-lg">Bricks</Title>
            <BricksTable bricks={v.bricks} />
            <Title headingLevel="h2" className="pf-v6-u-mt-lg">Images</Title>
            <ImagesTable images={images.data?.images ?? []} label="Images of the volume" loaded={images.data !== undefined}
              empty="This volume has no image yet." onChanged={reload} />
          </>
        )}
      </PageSection>
      {verifying && <VolumeVerifyModal volume={name} onClose={() => setVerifying(false)} />}
      {deleting && v && <DeleteVolumeModal volume={v} onClose={() => setDeleting(false)} onDeleted={() => { setDeleting(false); navigate("/storage"); }} />}
    </>
  );
}
