// "Upload ISO": a file from this computer into a new image of the ISO library on a chosen volume,
// sent chunk by chunk (upload.ts) with a progress bar in bytes and percent; Cancel stops it and
// deletes the half-uploaded image. Errors show in the dialog (on the name field when the API
// names it).
import {
  Alert, Button, Form, FormGroup, FormSelect, FormSelectOption, Modal, ModalBody, ModalFooter, ModalHeader, Progress,
  ProgressMeasureLocation,
} from "@patternfly/react-core";
import { useRef, useState, type FormEvent } from "react";
import { ApiCallError } from "../api/client.ts";
import type { Image, ImageKind } from "../api/types.ts";
import { fieldError, TextField } from "../app/fields.tsx";
import { useSession } from "../app/session.ts";
import { formatBytes, imageNameFor } from "./storage-model.ts";
import { browserBase64, uploadImage, UploadCancelled, type UploadProgress } from "./upload.ts";

type Phase = { kind: "form" } | { kind: "sending"; p: UploadProgress } | { kind: "done"; image?: Image };

const percentOf = (p: UploadProgress) => (p.totalBytes === 0 ? 100 : Math.floor((100 * p.sentBytes) / p.totalBytes));

function UploadBar({ p, done }: { p: UploadProgress; done: boolean }) {
  const pct = done ? 100 : percentOf(p);
  return (
    <Progress value={pct} title={done ? "Uploaded" : "Uploading"} measureLocation={ProgressMeasureLocation.top} variant={done ? "success" : undefined}
      label={`${formatBytes(p.sentBytes)} of ${formatBytes(p.totalBytes)} (${pct}%)`} aria-label="Upload progress" data-testid="upload-progress" />
  );
}

export function IsoUploadModal({ volumes, onClose, onUploaded }: { volumes: readonly string[]; onClose(): void; onUploaded(): void }) {
  const { client } = useSession();
  const [file, setFile] = useState<File>();
  const [name, setName] = useState("");
  const [volume, setVolume] = useState(volumes[0] ?? "");
  const [kind, setKind] = useState<ImageKind>("iso");
  const [phase, setPhase] = useState<Phase>({ kind: "form" });
  const [last, setLast] = useState<UploadProgress>({ sentBytes: 0, totalBytes: 0 });
  const [error, setError] = useState<ApiCallError>();
  const [notice, setNotice] = useState<string>();
  const abort = useRef<AbortController>(undefined);
  const start = (e?: FormEvent) => {
    e?.preventDefault();
    if (!file) return;
    const ctl = new AbortController();
    abort.current = ctl;
    setError(undefined);
    setNotice(undefined);
    const onProgress = (p: UploadProgress) => { setLast(p); setPhase({ kind: "sending", p }); };
    const deps = { call: client.call.bind(client), sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)), nowMs: () => Date.now(), base64: browserBase64 };
    uploadImage(deps, { volume, name, kind, file, signal: ctl.signal, onProgress }).then(
      (image) => { setPhase({ kind: "done", image }); onUploaded(); },
      (err: unknown) => {
        setPhase({ kind: "form" });
        if (err instanceof UploadCancelled) setNotice(`Upload cancelled: ${err.cleanup}.`);
        else setError(err instanceof ApiCallError ? err : new ApiCallError("internal", String(err), 0));
        onUploaded();
      },
    );
  };
  const sending = phase.kind === "sending";
  const nameErr = fieldError(error, "name");
  return (
    <Modal isOpen onClose={sending ? undefined : onClose} variant="medium" aria-labelledby="upload-iso-title">
      <ModalHeader title="Upload ISO" labelId="upload-iso-title" description="The file becomes an image of the ISO library, replicated on every brick of the volume." />
      <ModalBody>
        {error && !nameErr && <Alert variant="danger" isInline title={`Upload failed: ${error.message}`} className="pf-v6-u-mb-md" data-testid="upload-error" />}
        {notice && <Alert variant="info" isInline title={notice} className="pf-v6-u-mb-md" data-testid="upload-notice" />}
        {phase.kind === "done" && <Alert variant="success" isInline title={`${phase.image?.name ?? name} is ${phase.image?.state ?? "ready"}`} className="pf-v6-u-mb-md" />}
        <Form id="upload-iso-form" onSubmit={start}>
          <FormGroup label="File" fieldId="iso-file" isRequired>
            <input id="iso-file" type="file" accept=".iso,.img,.raw,application/x-iso9660-image" disabled={sending}
              onChange={(e) => { const f = e.target.files?.[0]; setFile(f); if (f) setName(imageNameFor(f.name)); }} />
            {file && <p className="pf-v6-u-mt-sm pf-v6-u-color-200">{file.name}: {formatBytes(file.size)}</p>}
          </FormGroup>
          <TextField id="iso-name" label="Image name" value={name} onChange={setName} isRequired error={nameErr} autoComplete="off"
            hint="Taken from the file name; a-z, 0-9, “.”, “_”, “-”" />
          <FormGroup label="Volume" fieldId="iso-volume" isRequired>
            <FormSelect id="iso-volume" value={volume} onChange={(_e, v) => setVolume(v)} isDisabled={sending}>
              {volumes.map((v) => <FormSelectOption key={v} value={v} label={v} />)}
            </FormSelect>
          </FormGroup>
          <FormGroup label="Kind" fieldId="iso-kind">
            <FormSelect id="iso-kind" value={kind} onChange={(_e, v) => setKind(v as ImageKind)} isDisabled={sending}>
              <FormSelectOption value="iso" label="ISO (installation media, read-only CD-ROM)" />
              <FormSelectOption value="template" label="Template (a disk image to clone VMs from)" />
            </FormSelect>
          </FormGroup>
        </Form>
        {(sending || phase.kind === "done") && <div className="pf-v6-u-mt-lg"><UploadBar p={last} done={phase.kind === "done"} /></div>}
      </ModalBody>
      <ModalFooter>
        {phase.kind !== "done" && (
          <Button type="submit" form="upload-iso-form" isLoading={sending} isDisabled={sending || !file || !name || !volume}>Upload</Button>
        )}
        {sending
          ? <Button variant="secondary" isDanger onClick={() => abort.current?.abort()}>Cancel upload</Button>
          : <Button variant="link" onClick={onClose}>{phase.kind === "done" ? "Close" : "Cancel"}</Button>}
      </ModalFooter>
    </Modal>
  );
}
