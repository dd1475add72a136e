// The dialogs of the image actions: create a disk image, grow one, verify its replicas (showing
// "consistent" or the chunks that differ) and delete one. The API's validation errors show on the
// field they name (name, size_bytes, volume, format), anything else above the form.
import {
  Alert, Button, Form, FormGroup, FormSelect, FormSelectOption, Modal, ModalBody, ModalFooter, ModalHeader, Spinner,
} from "@patternfly/react-core";
import { Table, Tbody, Td, Th, Thead, Tr } from "@patternfly/react-table";
import { useEffect, useState, type FormEvent } from "react";
import { ApiCallError } from "../api/client.ts";
import type { Image, VerifyResult } from "../api/types.ts";
import { fieldError, TextField } from "../app/fields.tsx";
import { useSession } from "../app/session.ts";
import { ConfirmModal } from "./parts.tsx";
import { formatBytes, imageSectorBytes, parseSize } from "./storage-model.ts";

const asApiError = (e: unknown) => (e instanceof ApiCallError ? e : new ApiCallError("internal", String(e), 0));

/** A size typed by the user, as the API's size_bytes; a local error when it is not a size. */
function sizeBytesOf(text: string): { bytes?: string; error?: ApiCallError } {
  const n = parseSize(text);
  if (n === undefined) return { error: new ApiCallError("invalid_argument", `“${text}” is not a size: write e.g. 10 GiB, 512 MiB or a number of bytes`, 0, "size_bytes") };
  return { bytes: String(n) };
}

const sizeHint = `Bytes, or with a unit: 512 MiB, 10 GiB (a multiple of ${imageSectorBytes} bytes)`;

export function ImageCreateModal({ volumes, onClose, onCreated }: { volumes: readonly string[]; onClose(): void; onCreated(i: Image): void }) {
  const { client } = useSession();
  const [volume, setVolume] = useState(volumes[0] ?? "");
  const [name, setName] = useState("");
  const [size, setSize] = useState("10 GiB");
  const [format, setFormat] = useState("raw");
  const [error, setError] = useState<ApiCallError>();
  const [busy, setBusy] = useState(false);
  const submit = (e?: FormEvent) => {
    e?.preventDefault();
    const s = sizeBytesOf(size);
    if (!s.bytes) return setError(s.error);
    setBusy(true);
    client.call("ImageService/CreateImage", { volume, name, sizeBytes: s.bytes, format, kind: "disk" }).then(
      (r) => (r.image ? onCreated(r.image) : onClose()), (err: unknown) => setError(asApiError(err)),
    ).finally(() => setBusy(false));
  };
  const errs = { volume: fieldError(error, "volume"), name: fieldError(error, "name"), size: fieldError(error, "sizeBytes"), format: fieldError(error, "format") };
  const formErr = error && !Object.values(errs).some(Boolean) ? error.message : undefined;
  return (
    <Modal isOpen onClose={onClose} variant="small" aria-labelledby="create-image-title">
      <ModalHeader title="Create disk image" labelId="create-image-title" />
      <ModalBody>
        {formErr && <Alert variant="danger" isInline title={formErr} className="pf-v6-u-mb-md" />}
        {volumes.length === 0 && <Alert variant="info" isInline title="Create a volume first: images live on volumes." className="pf-v6-u-mb-md" />}
        <Form id="create-image-form" onSubmit={submit}>
          <FormGroup label="Volume" fieldId="image-volume" isRequired>
            <FormSelect id="image-volume" value={volume} onChange={(_e, v) => setVolume(v)} validated={errs.volume ? "error" : "default"}>
              {volumes.map((v) => <FormSelectOption key={v} value={v} label={v} />)}
            </FormSelect>
          </FormGroup>
          <TextField id="image-name" label="Name" value={name} onChange={setName} isRequired autoFocus autoComplete="off" error={errs.name}
            hint="a-z, 0-9, “.”, “_”, “-”; starts and ends with a letter or digit" />
          <TextField id="image-size" label="Size" value={size} onChange={setSize} isRequired error={errs.size} hint={sizeHint} />
          <FormGroup label="Format" fieldId="image-format">
            <FormSelect id="image-format" value={format} onChange={(_e, v) => setFormat(v)} validated={errs.format ? "error" : "default"}>
              <FormSelectOption value="raw" label="raw" />
              <FormSelectOption value="qcow2" label="qcow2" />
            </FormSelect>
          </FormGroup>
        </Form>
      </ModalBody>
      <ModalFooter>
        <Button type="submit" form="create-image-form" isLoading={busy} isDisabled={busy || volumes.length === 0}>Create</Button>
        <Button variant="link" onClick={onClose}>Cancel</Button>
      </ModalFooter>
    </Modal>
  );
}

function ResizeModal({ image, onClose, onDone }: { image: Image; onClose(): void; onDone(): void }) {
  const { client } = useSession();
  const [size, setSize] = useState(formatBytes(Number(image.sizeBytes)));
  const [error, setError] = useState<ApiCallError>();
  const [busy, setBusy] = useState(false);
  const submit = (e?: FormEvent) => {
    e?.preventDefault();
    const s = sizeBytesOf(size);
    if (!s.bytes) return setError(s.error);
    setBusy(true);
    client.call("ImageService/ResizeImage", { volume: image.volume, name: image.name, sizeBytes: s.bytes })
      .then(onDone, (err: unknown) => setError(asApiError(err))).finally(() => setBusy(false));
  };
  const sizeErr = fieldError(error, "sizeBytes");
  return (
    <Modal isOpen onClose={onClose} variant="small" aria-labelledby="resize-image-title">
      <ModalHeader title={`Grow ${image.name}`} labelId="resize-image-title" />
      <ModalBody>
        {error && !sizeErr && <Alert variant="danger" isInline title={error.message} className="pf-v6-u-mb-md" />}
        <Form id="resize-image-form" onSubmit={submit}>
          <TextField id="image-new-size" label="New size" value={size} onChange={setSize} isRequired autoFocus error={sizeErr}
            hint={`Now ${formatBytes(Number(image.sizeBytes))} (${image.sizeBytes} bytes). Images only grow.`} />
        </Form>
      </ModalBody>
      <ModalFooter>
        <Button type="submit" form="resize-image-form" isLoading={busy} isDisabled={busy}>Resize</Button>
        <Button variant="link" onClick={onClose}>Cancel</Button>
      </ModalFooter>
    </Modal>
  );
}

function VerifyReport({ r }: { r: VerifyResult }) {
  const failed = r.replicas.filter((x) => !x.ok);
  const name = (id: string) => r.replicas.find((x) => x.nodeId === id)?.nodeName || `node ${id}`;
  return (
    <div data-testid="verify-result">
      {r.consistent
        ? <Alert variant="success" isInline title={`Consistent: ${r.replicas.length} replicas read, no chunk differs`} />
        : <Alert variant="danger" isInline title={`Not consistent: ${r.mismatches.length} chunks differ, ${failed.length} replicas unreadable`} />}
      {failed.map((x) => <p key={x.nodeId} className="pf-v6-u-mt-sm">{x.nodeName || x.nodeId}: {x.error || "not read"}</p>)}
      {r.mismatches.length > 0 && (
        <Table aria-label="Chunks that differ" variant="compact" className="pf-v6-u-mt-md">
          <Thead><Tr><Th>Offset</Th><Th>Chunk</Th><Th>Nodes that differ</Th></Tr></Thead>
          <Tbody>
            {r.mismatches.map((m) => (
              <Tr key={m.offset}><Td>{m.offset}</Td><Td>{formatBytes(Number(r.chunkBytes))}</Td><Td>{m.nodeIds.map(name).join(", ")}</Td></Tr>
            ))}
          </Tbody>
        </Table>
      )}
    </div>
  );
}

function VerifyModal({ image, onClose }: { image: Image; onClose(): void }) {
  const { client } = useSession();
  const [result, setResult] = useState<VerifyResult>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    client.call("ImageService/VerifyImage", { volume: image.volume, name: image.name })
      .then(setResult, (e: unknown) => setError(asApiError(e).message));
  }, [client, image.volume, image.name]);
  return (
    <Modal isOpen onClose={onClose} variant="medium" aria-labelledby="verify-image-title">
      <ModalHeader title={`Verify ${image.name}`} labelId="verify-image-title"
        description="Reads every in-sync replica and compares the checksums of each chunk." />
      <ModalBody>
        {!result && !error && <Spinner size="lg" aria-label={`Verifying ${image.name}`} />}
        {error && <Alert variant="danger" isInline title={`Verification failed: ${error}`} data-testid="verify-result" />}
        {result && <VerifyReport r={result} />}
      </ModalBody>
      <ModalFooter><Button variant="primary" onClick={onClose}>Done</Button></ModalFooter>
    </Modal>
  );
}

export type ImageAction = "verify" | "resize" | "delete";

/** The dialog of one action on one image. */
export function ImageActionModal({ action, image, onClose, onChanged }: { action: ImageAction; image: Image; onClose(): void; onChanged(deleted: boolean): void }) {
  const { client } = useSession();
  if (action === "verify") return <VerifyModal image={image} onClose={onClose} />;
  if (action === "resize") return <ResizeModal image={image} onClose={onClose} onDone={() => { onClose(); onChanged(false); }} />;
  return (
    <ConfirmModal title={`Delete image ${image.name}?`} action="Delete" onClose={onClose} onDone={() => { onClose(); onChanged(true); }}
      run={() => client.call("ImageService/DeleteImage", { volume: image.volume, name: image.name })}
      body={`Its replicas on every brick of volume ${image.volume} are deleted. This cannot be undone.`} />
  );
}
