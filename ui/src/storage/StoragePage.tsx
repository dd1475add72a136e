// Storage: tabs for the volumes, every image, and the ISO library (images of kind iso and
// template, with "Upload ISO"). Each tab has its own path (/storage, /storage/images,
// /storage/isos) so a reload or a link lands on it; the volume and image detail pages hang below
// (/storage/volumes/<name>, /storage/images/<volume>/<name>). Loaded as a chunk of its own.
import { Alert, Button, PageSection, Tab, Tabs, TabTitleText, Title, ToolbarItem } from "@patternfly/react-core";
import { useState } from "react";
import { navigate } from "../app/router.ts";
import { useSession } from "../app/session.ts";
import { ImageDetailPage } from "./ImageDetailPage.tsx";
import { ImageCreateModal } from "./ImageModals.tsx";
import { ImagesTable } from "./ImagesTable.tsx";
import { IsoUploadModal } from "./IsoUploadModal.tsx";
import { imagePath } from "./parts.tsx";
import { isLibraryImage } from "./storage-model.ts";
import { useImages, useVolumes } from "./use-storage.ts";
import { VolumeDetailPage } from "./VolumeDetailPage.tsx";
import { VolumesTab } from "./VolumesTab.tsx";

const tabPaths = { volumes: "/storage", images: "/storage/images", isos: "/storage/isos" } as const;
type TabKey = keyof typeof tabPaths;

function StorageTabs({ tab }: { tab: TabKey }) {
  const { isAdmin } = useSession();
  const volumes = useVolumes();
  const images = useImages();
  const [modal, setModal] = useState<"create" | "upload">();
  const volumeNames = (volumes.data?.volumes ?? []).map((v) => v.name).sort();
  const all = images.data?.images ?? [];
  const reload = () => { volumes.reload(); images.reload(); };
  const error = volumes.error ?? images.error;
  return (
    <>
      <PageSection><Title headingLevel="h1">Storage</Title></PageSection>
      <PageSection>
        {error && <Alert variant="warning" isInline title={`Storage not refreshed: ${error.message}`} className="pf-v6-u-mb-md" />}
        <Tabs activeKey={tab} onSelect={(_e, k) => navigate(tabPaths[k as TabKey])} aria-label="Storage" mountOnEnter unmountOnExit>
          <Tab eventKey="volumes" title={<TabTitleText>Volumes</TabTitleText>}>
            <VolumesTab volumes={volumes.data?.volumes ?? []} loaded={volumes.data !== undefined} onChanged={reload} />
          </Tab>
          <Tab eventKey="images" title={<TabTitleText>Images</TabTitleText>}>
            <ImagesTable images={all} label="Images" loaded={images.data !== undefined} empty="No image yet." onChanged={reload}
              tools={isAdmin && <ToolbarItem><Button onClick={() => setModal("create")}>Create disk image</Button></ToolbarItem>} />
          </Tab>
          <Tab eventKey="isos" title={<TabTitleText>ISO library</TabTitleText>}>
            <ImagesTable images={all.filter(isLibraryImage)} label="ISO library" loaded={images.data !== undefined}
              empty="No ISO or template yet." onChanged={reload}
              tools={isAdmin && <ToolbarItem><Button onClick={() => setModal("upload")}>Upload ISO</Button></ToolbarItem>} />
          </Tab>
        </Tabs>
      </PageSection>
      {modal === "create" && (
        <ImageCreateModal volumes={volumeNames} onClose={() => setModal(undefined)}
          onCreated={(i) => { setModal(undefined); reload(); navigate(imagePath(i)); }} />
      )}
      {modal === "upload" && <IsoUploadModal volumes={volumeNames} onClose={() => setModal(undefined)} onUploaded={reload} />}
    </>
  );
}

/** The storage page of `path` (any path under /storage). */
export default function StorageRoutes({ path }: { path: string }) {
  const parts = path.split("/").slice(2).map(decodeURIComponent);
  if (parts[0] === "volumes" && parts.length === 2) return <VolumeDetailPage key={parts[1]} name={parts[1]!} />;
  if (parts[0] === "images" && parts.length === 3) return <ImageDetailPage key={`${parts[1]}/${parts[2]}`} volume={parts[1]!} name={parts[2]!} />;
  const tab: TabKey = parts[0] === "images" ? "images" : parts[0] === "isos" ? "isos" : "volumes";
  return <StorageTabs tab={tab} />;
}
