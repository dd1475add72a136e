// The "Create volume" dialog: name, replica count (or 2 + arbiter), and optionally a brick directory per node
// (empty: the node's default <data dir>/bricks/<volume>). The API's errors show on the field they
// name, brick_paths[i].path on the path of the node it was sent for.
import {
  Alert, Button, Form, FormGroup, FormHelperText, FormSelect, FormSelectOption, HelperText, HelperTextItem, Modal, ModalBody, ModalFooter, ModalHeader,
} from "@patternfly/react-core";
import { useState, type FormEvent } from "react";
import { ApiCallError } from "../api/client.ts";
import type { Volume } from "../api/types.ts";
import { fieldError, TextField } from "../app/fields.tsx";
import { usePolled } from "../app/poll.ts";
import { useSession } from "../app/session.ts";

/** Replicas of a volume (storage/volume/model.ts volumeReplicaCountMax). */
export const volumeReplicaCountMax = 3;

/** The brick paths the API is sent (only the nodes given one), in the order its field errors index them. */
export function brickPathsOf(paths: Readonly<Record<string, string>>): { nodeName: string; path: string }[] {
  return Object.entries(paths).filter(([, p]) => p.trim() !== "").map(([nodeName, p]) => ({ nodeName, path: p.trim() }));
}

/** The API's error on the brick path of `node`, when its field (brick_paths[i].…) points there. */
function brickError(err: ApiCallError | undefined, sent: readonly { nodeName: string }[], node: string): string | undefined {
  const m = err?.field ? /^brick_?paths\[(\d+)\]/i.exec(err.field) : null;
  if (!m || sent[Number(m[1])]?.nodeName !== node) return undefined;
  return err!.message.replace(/^field "[^"]*":\s*/, "");
}

/** The replica choices beyond the default; "2a" is two data copies with Raft as the arbiter. */
const layoutLabels: Record<string, string> = { "1": "1", "2": "2", "2a": "2 + arbiter (keeps writing on one copy; the cluster's quorum arbitrates)", "3": "3" };

/** The request fields of a replica choice. */
export function layoutRequest(layout: string): { replicaCount: number; arbiter?: boolean } {
  return layout === "2a" ? { replicaCount: 2, arbiter: true } : { replicaCount: Number(layout) };
}

export function VolumeCreateModal({ onClose, onCreated }: { onClose(): void; onCreated(v: Volume): void }) {
  const { client } = useSession();
  const status = usePolled(() => client.call("ClusterService/GetStatus", {}), 0);
  const nodes = (status.data?.nodes ?? []).map((n) => n.name).sort();
  const [name, setName] = useState("");
  const [layout, setLayout] = useState("0");
  const [paths, setPaths] = useState<Record<string, string>>({});
  const [sent, setSent] = useState<{ nodeName: string; path: string }[]>([]);
  const [error, setError] = useState<ApiCallError>();
  const [busy, setBusy] = useState(false);
  const submit = (e?: FormEvent) => {
    e?.preventDefault();
    const brickPaths = brickPathsOf(paths);
    setSent(brickPaths);
    setBusy(true);
    client.call("VolumeService/CreateVolume", { name, ...layoutRequest(layout), brickPaths }).then(
      (r) => (r.volume ? onCreated(r.volume) : onClose()),
      (err: unknown) => setError(err instanceof ApiCallError ? err : new ApiCallError("internal", String(err), 0)),
    ).finally(() => setBusy(false));
  };
  const nameErr = fieldError(error, "name");
  const replicaErr = fieldError(error, "replicaCount") ?? fieldError(error, "arbiter");
  const onField = nameErr || replicaErr || nodes.some((n) => brickError(error, sent, n));
  return (
    <Modal isOpen onClose={onClose} variant="small" aria-labelledby="create-volume-title">
      <ModalHeader title="Create volume" labelId="create-volume-title" description="A replicated volume: a brick (directory) on each of its nodes holds a full copy of every image." />
      <ModalBody>
        {error && !onField && <Alert variant="danger" isInline title={error.message} className="pf-v6-u-mb-md" />}
        <Form id="create-volume-form" onSubmit={submit}>
          <TextField id="volume-name" label="Name" value={name} onChange={setName} isRequired autoFocus autoComplete="off" error={nameErr}
            hint="a-z, 0-9 and “-”, up to 63 characters" />
          <FormGroup label="Replicas" fieldId="volume-replicas">
            <FormSelect id="volume-replicas" value={layout} onChange={(_e, v) => setLayout(v)} validated={replicaErr ? "error" : "default"}>
              <FormSelectOption value="0" label={`Default (${Math.min(volumeReplicaCountMax, nodes.length || volumeReplicaCountMax)}: one per node, up to ${volumeReplicaCountMax})`} />
              {["1", "2", "2a", "3"].map((v) => <FormSelectOption key={v} value={v} label={layoutLabels[v] ?? v} />)}
            </FormSelect>
            {replicaErr && <FormHelperText><HelperText><HelperTextItem variant="error">{replicaErr}</HelperTextItem></HelperText></FormHelperText>}
          </FormGroup>
          {nodes.map((n) => (
            <TextField key={n} id={`brick-path-${n}`} label={`Brick path on ${n}`} value={paths[n] ?? ""} onChange={(v) => setPaths((p) => ({ ...p, [n]: v }))}
              error={brickError(error, sent, n)} hint="Optional absolute directory; empty: the node's default" autoComplete="off" />
          ))}
        </Form>
      </ModalBody>
      <ModalFooter>
        <Button type="submit" form="create-volume-form" isLoading={busy} isDisabled={busy}>Create</Button>
        <Button variant="link" onClick={onClose}>Cancel</Button>
      </ModalFooter>
    </Modal>
  );
}
