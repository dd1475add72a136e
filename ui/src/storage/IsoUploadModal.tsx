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

/** One upload at a time: its phase, last progress, outcome, and cancel. */
function useUpload(onUploaded: () => void) {
  const { client } = useSession();
  const [phase, setPhase] = useState<Phase>({ kind: "form" });
  const [last, setLast] = useState<UploadProgress>({ sentBytes: 0, totalBytes: 0 });
  const [error, setError] = useState<ApiCallError>();
  const [notice, setNotice] = useState<string>();
  const [cancelling, setCancelling] = useState(false);
  const abort = useRef<AbortController>(undefined);
  const start = (r: { volume: string; name: string; kind: ImageKind; file: File }) => {
    const ctl = new AbortController();
    abort.current = ctl;
    setError(undefined);
    setNotice(undefined);
    setCancelling(false);
    const onProgress = (p: UploadProgress) => { setLast(p); setPhase({ kind: "sending", p }); };
    const deps = { call: client.call.bind(client), sleep: (ms: number) => new Promise<void>((res) => setTimeout(res, ms)), nowMs: () => Date.now(), base64: browserBase64 };
    uploadImage(deps, { ...r, signal: ctl.signal, onProgress }).then(
      (image) => { setPhase({ kind: "done", image }); onUploaded(); },
      (err: unknown) => {
        setPhase({ kind: "form" });
        if (err instanceof UploadCancelled) setNotice(`Upload cancelled: ${err.cleanup}.`);
        else setError(err instanceof ApiCallError ? err : new ApiCallError("internal", String(err), 0));
        onUploaded();
      },
    );
  };
  const cancel = () => { setCancelling(true); abort.current?.abort(); };
  return { phase, last, error, notice, cancelling, start, cancel };
}

interface FieldsProps {
  volumes: readonly string[];
  file: File | undefined;
  setFile(f: File | undefined): void;
  name: string;
  setName(n: string): void;
  nameErr: string | undefined;
  volume: string;
  setVolume(v: string): void;
  kind: ImageKind;
  setKind(k: ImageKind): void;
}

function UploadFields(p: FieldsProps) {
  return (
    <>
      <FormGroup label="File" fieldId="iso-file" isRequired>
        <input id="iso-file" type="file" accept=".iso,.img,.raw,application/x-iso9660-image"
          onChange={(e) => { const f = e.target.files?.[0]; p.setFile(f); if (f) p.setName(imageNameFor(f.name)); }} />
        {p.file && <p className="pf-v6-u-mt-sm pf-v6-u-color-200">{p.file.name}: {formatBytes(p.file.size)}</p>}
      </FormGroup>
      <TextField id="iso-name" label="Image name" value={p.name} onChange={p.setName} isRequired error={p.nameErr} autoComplete="off"
        hint="Taken from the file name; a-z, 0-9, “.”, “_”, “-”" />
      <FormGroup label="Volume" fieldId="iso-volume" isRequired>
        <FormSelect id="iso-volume" value={p.volume} onChange={(_e, v) => p.setVolume(v)}>
          {p.volumes.map((v) => <FormSelectOption key={v} value={v} label={v} />)}
        </FormSelect>
      </FormGroup>
      <FormGroup label="Kind" fieldId="iso-kind">
        <FormSelect id="iso-kind" value={p.kind} onChange={(_e, v) => p.setKind(v as ImageKind)}>
          <FormSelectOption value="iso" label="ISO (installation media, read-only CD-ROM)" />
          <FormSelectOption value="template" label="Template (a disk image to clone VMs from)" />
        </FormSelect>
      </FormGroup>
    </>
  );
}

export function IsoUploadModal({ volumes, onClose, onUploaded }: { volumes: readonly string[]; onClose(): void; onUploaded(): void }) {
  const [file, setFile] = useState<File>();
  const [name, setName] = useState("");
  const [volume, setVolume] = useState(volumes[0] ?? "");
  const [kind, setKind] = useState<ImageKind>("iso");
  const u = useUpload(onUploaded);
  const submit = (e?: FormEvent) => {
    e?.preventDefault();
    if (file) u.start({ volume, name, kind, file });
  };
  const sending = u.phase.kind === "sending";
  const done = u.phase.kind === "done" ? u.phase : undefined;
  const nameErr = fieldError(u.error, "name");
  return (
    <Modal isOpen onClose={sending ? undefined : onClose} variant="medium" aria-labelledby="upload-iso-title">
      <ModalHeader title="Upload ISO" labelId="upload-iso-title" description="The file becomes an image of the ISO library, replicated on every brick of the volume." />
      <ModalBody>
        {u.error && !nameErr && <Alert variant="danger" isInline title={`Upload failed: ${u.error.message}`} className="pf-v6-u-mb-md" data-testid="upload-error" />}
        {u.notice && <Alert variant="info" isInline title={u.notice} className="pf-v6-u-mb-md" data-testid="upload-notice" />}
        {done && <Alert variant="success" isInline title={`${done.image?.name ?? name} is ${done.image?.state ?? "ready"}`} className="pf-v6-u-mb-md" />}
        <Form id="upload-iso-form" onSubmit={submit}>
          {/* A disabled fieldset freezes every field while the file is sent. */}
          <fieldset disabled={sending} className="pf-v6-c-form pf-v6-u-m-0 pf-v6-u-p-0" style={{ border: 0, minWidth: 0 }}>
            <UploadFields {...{ volumes, file, setFile, name, setName, nameErr, volume, setVolume, kind, setKind }} />
          </fieldset>
        </Form>
        {(sending || done) && <div className="pf-v6-u-mt-lg"><UploadBar p={u.last} done={done !== undefined} /></div>}
      </ModalBody>
      <ModalFooter>
        {!done && <Button type="submit" form="upload-iso-form" isLoading={sending} isDisabled={sending || !file || !name || !volume}>Upload</Button>}
        {sending
          ? <Button variant="secondary" isDanger isLoading={u.cancelling} isDisabled={u.cancelling} onClick={u.cancel}>Cancel upload</Button>
          : <Button variant="link" onClick={onClose}>{done ? "Done" : "Cancel"}</Button>}
      </ModalFooter>
    </Modal>
  );
}
