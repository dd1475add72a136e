// Small pieces the storage pages share: the used/capacity bar, the replica health label, links to
// the volume and image pages, the facts list, and the "are you sure" dialog of deletions.
import {
  Alert, Button, DescriptionList, DescriptionListDescription, DescriptionListGroup, DescriptionListTerm, Label, Modal,
  ModalBody, ModalFooter, ModalHeader, Progress, ProgressMeasureLocation, ProgressSize, ProgressVariant,
} from "@patternfly/react-core";
import { useState, type ReactNode } from "react";
import { ApiCallError } from "../api/client.ts";
import type { Image } from "../api/types.ts";
import { navigate } from "../app/router.ts";
import { formatBytes, replicaHealth, usedPercent, type Use } from "./storage-model.ts";

export const volumePath = (name: string) => `/storage/volumes/${encodeURIComponent(name)}`;
export const imagePath = (i: { volume: string; name: string }) => `/storage/images/${encodeURIComponent(i.volume)}/${encodeURIComponent(i.name)}`;

export function Link({ to, children }: { to: string; children: ReactNode }) {
  return <a href={to} onClick={(e) => { e.preventDefault(); navigate(to); }}>{children}</a>;
}

/** "1.2 GiB of 40 GiB" over a bar, the percent on its right; orange past 80 %, red past 95 %. */
export function UsageBar({ use, label, testId }: { use: Use; label: string; testId?: string }) {
  if (use.reported === 0) return <span data-testid={testId} className="pf-v6-u-color-200">not reported yet</span>;
  const pct = usedPercent(use);
  const variant = pct >= 95 ? ProgressVariant.danger : pct >= 80 ? ProgressVariant.warning : undefined;
  const text = `${formatBytes(use.usedBytes)} of ${formatBytes(use.capacityBytes)}`;
  return (
    <Progress value={pct} size={ProgressSize.sm} measureLocation={ProgressMeasureLocation.top} variant={variant} title={text}
      label={`${Math.round(pct)}%`} valueText={`${label}: ${text} used (${Math.round(pct)}%)`} aria-label={label} data-testid={testId} />
  );
}

const toneColor = { green: "green", orange: "orange", red: "red", grey: "grey" } as const;

export function ReplicaHealthLabel({ image }: { image: Image }) {
  const h = replicaHealth(image);
  return <Label color={toneColor[h.tone]} isCompact data-testid="replica-health">{h.text}</Label>;
}

export function ImageStateLabel({ state }: { state: string }) {
  return <Label color={state === "ready" ? "green" : "blue"} isCompact data-testid="image-state">{state}</Label>;
}

export function Facts({ rows, label }: { rows: [string, ReactNode][]; label: string }) {
  return (
    <DescriptionList isHorizontal isCompact aria-label={label}>
      {rows.map(([t, d]) => (
        <DescriptionListGroup key={t}><DescriptionListTerm>{t}</DescriptionListTerm><DescriptionListDescription>{d}</DescriptionListDescription></DescriptionListGroup>
      ))}
    </DescriptionList>
  );
}

interface ConfirmProps { title: string; body: ReactNode; action: string; run(): Promise<unknown>; onClose(): void; onDone(): void }

/** A destructive action behind a confirmation; the API's refusal shows in the dialog. */
export function ConfirmModal({ title, body, action, run, onClose, onDone }: ConfirmProps) {
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const go = () => {
    setBusy(true);
    run().then(onDone, (e: unknown) => setError(e instanceof ApiCallError ? e.message : String(e))).finally(() => setBusy(false));
  };
  return (
    <Modal isOpen onClose={onClose} variant="small" aria-labelledby="confirm-title">
      <ModalHeader title={title} labelId="confirm-title" titleIconVariant="warning" />
      <ModalBody>
        {error && <Alert variant="danger" isInline title={error} className="pf-v6-u-mb-md" />}
        {body}
      </ModalBody>
      <ModalFooter>
        <Button variant="danger" onClick={go} isLoading={busy} isDisabled={busy}>{action}</Button>
        <Button variant="link" onClick={onClose}>Cancel</Button>
      </ModalFooter>
    </Modal>
  );
}
