// The lifecycle buttons of one VM (start, ACPI shutdown, force stop, pause, resume, delete with
// confirmation), offered as its state allows. Not rendered for Auditors.
import { Alert, Button, Modal, ModalBody, ModalFooter, ModalHeader, ModalVariant, Toolbar, ToolbarContent, ToolbarItem } from "@patternfly/react-core";
import { useState } from "react";
import { ApiCallError } from "../api/client.ts";
import type { MethodName, Vm } from "../api/types.ts";
import { useSession } from "../app/session.ts";
import { actionAllowed, vmState, type VmAction } from "./vm-state.ts";

const buttons: { action: Exclude<VmAction, "delete">; label: string; method: MethodName; variant: "primary" | "secondary" | "danger" }[] = [
  { action: "start", label: "Start", method: "VmService/StartVm", variant: "primary" },
  { action: "shutdown", label: "Shut down (ACPI)", method: "VmService/ShutdownVm", variant: "secondary" },
  { action: "stop", label: "Force stop", method: "VmService/StopVm", variant: "danger" },
  { action: "pause", label: "Pause", method: "VmService/PauseVm", variant: "secondary" },
  { action: "resume", label: "Resume", method: "VmService/ResumeVm", variant: "secondary" },
];

export function VmActions({ vm, onChanged, onDeleted }: { vm: Vm; onChanged(): void; onDeleted(): void }) {
  const { client } = useSession();
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const state = vmState(vm);
  const run = async (method: MethodName, after: () => void) => {
    setBusy(true);
    setError(undefined);
    try {
      await client.call(method as "VmService/StartVm", { name: vm.name });
      after();
    } catch (err) {
      setError(err instanceof ApiCallError ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      {error && <Alert variant="danger" isInline title={`Refused: ${error}`} />}
      <Toolbar>
        <ToolbarContent>
          {buttons.map((b) => (
            <ToolbarItem key={b.action}>
              <Button variant={b.variant} isDisabled={busy || !actionAllowed(b.action, state)} onClick={() => void run(b.method, onChanged)}>{b.label}</Button>
            </ToolbarItem>
          ))}
          <ToolbarItem>
            <Button variant="danger" isDisabled={busy || !actionAllowed("delete", state)} onClick={() => setConfirmDelete(true)}>Delete</Button>
          </ToolbarItem>
        </ToolbarContent>
      </Toolbar>
      <Modal variant={ModalVariant.small} isOpen={confirmDelete} onClose={() => setConfirmDelete(false)} aria-labelledby="vm-delete-title">
        <ModalHeader title={`Delete ${vm.name}?`} labelId="vm-delete-title" titleIconVariant="warning" />
        <ModalBody>The virtual machine and its disks are deleted. This cannot be undone.</ModalBody>
        <ModalFooter>
          <Button variant="danger" isDisabled={busy} onClick={() => { setConfirmDelete(false); void run("VmService/DeleteVm", onDeleted); }}>Delete</Button>
          <Button variant="link" onClick={() => setConfirmDelete(false)}>Cancel</Button>
        </ModalFooter>
      </Modal>
    </>
  );
}
