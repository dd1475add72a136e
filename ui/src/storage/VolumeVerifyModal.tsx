// The "Verify" dialog of a volume (Operators and Administrators): asks the cluster to compare the
// chunk checksums of every image across its in-sync replicas, then shows per image what was
// compared and which chunks differ on which nodes. It reads every replica in full, so the call
// may take long: it gets its own, longer time limit.
import { Alert, Button, Label, Modal, ModalBody, ModalFooter, ModalHeader, Spinner } from "@patternfly/react-core";
import { Table, Tbody, Td, Th, Thead, Tr } from "@patternfly/react-table";
import { useEffect, useState } from "react";
import { ApiCallError } from "../api/client.ts";
import type { VolumeVerifyImage, VolumeVerifyResult } from "../api/types.ts";
import { useSession } from "../app/session.ts";
import { formatBytes } from "./storage-model.ts";

/** How long the dialog waits for a whole volume to be read and compared. */
export const volumeVerifyTimeoutMs = 30 * 60_000;

const resultColor = { consistent: "green", differs: "red", unverified: "orange", skipped: "grey" } as const;

function ResultLabel({ result }: { result: string }) {
  return <Label color={resultColor[result as keyof typeof resultColor] ?? "grey"} isCompact>{result}</Label>;
}

function differences(i: VolumeVerifyImage, chunkBytes: number): string {
  return i.mismatches.map((m) => {
    const nodes = m.nodeNames.map((n, k) => n || `node ${m.nodeIds[k]}`).join(", ");
    return `offset ${m.offset} (${formatBytes(chunkBytes)}): ${nodes}${m.noMajority ? " (no majority)" : ""}`;
  }).join("; ");
}

function VolumeVerifyReport({ r }: { r: VolumeVerifyResult }) {
  const count = (result: string) => r.images.filter((i) => i.result === result).length;
  return (
    <div data-testid="volume-verify-result">
      {r.consistent
        ? <Alert variant="success" isInline title={`Consistent: ${count("consistent")} image(s) verified, ${count("skipped")} skipped`} />
        : <Alert variant="danger" isInline title={`Not consistent: ${count("differs")} image(s) differ, ${count("unverified")} could not be verified`} />}
      {r.images.length === 0 ? <p className="pf-v6-u-mt-md">This volume has no image.</p> : (
        <Table aria-label="Images verified" variant="compact" className="pf-v6-u-mt-md">
          <Thead><Tr><Th>Image</Th><Th>Result</Th><Th>Replicas compared</Th><Th>Chunks</Th><Th>Chunks that differ</Th><Th>Reason</Th></Tr></Thead>
          <Tbody>
            {r.images.map((i) => (
              <Tr key={i.name} data-testid={`verify-row-${i.name}`}>
                <Td dataLabel="Image">{i.name}</Td>
                <Td dataLabel="Result"><ResultLabel result={i.result} /></Td>
                <Td dataLabel="Replicas compared">{i.replicas.filter((x) => x.ok).map((x) => x.nodeName || `node ${x.nodeId}`).join(", ") || "—"}</Td>
                <Td dataLabel="Chunks">{String(i.chunksCompared)}</Td>
                <Td dataLabel="Chunks that differ">{differences(i, Number(r.chunkBytes)) || "—"}</Td>
                <Td dataLabel="Reason">{i.reason || "—"}</Td>
              </Tr>
            ))}
          </Tbody>
        </Table>
      )}
    </div>
  );
}

export function VolumeVerifyModal({ volume, onClose }: { volume: string; onClose(): void }) {
  const { client } = useSession();
  const [result, setResult] = useState<VolumeVerifyResult>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    client.call("VolumeService/VerifyVolume", { name: volume }, { timeoutMs: volumeVerifyTimeoutMs })
      .then(setResult, (e: unknown) => setError(e instanceof ApiCallError ? e.message : String(e)));
  }, [client, volume]);
  return (
    <Modal isOpen onClose={onClose} variant="large" aria-labelledby="verify-volume-title">
      <ModalHeader title={`Verify volume ${volume}`} labelId="verify-volume-title"
        description="Reads every in-sync replica of every image, one image at a time, and compares the checksums of each chunk." />
      <ModalBody>
        {!result && !error && <Spinner size="lg" aria-label={`Verifying volume ${volume}`} />}
        {error && <Alert variant="danger" isInline title={`Verification failed: ${error}`} data-testid="volume-verify-result" />}
        {result && <VolumeVerifyReport r={result} />}
      </ModalBody>
      <ModalFooter><Button variant="primary" onClick={onClose}>Done</Button></ModalFooter>
    </Modal>
  );
}
