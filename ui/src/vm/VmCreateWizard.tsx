// The "New virtual machine" wizard: basics (name, vCPUs, memory), boot (direct kernel boot: the
// only boot method the VM API offers today), storage and network, review. An error the API
// reports on a field is shown on that field and the wizard goes back to its step.
import {
  Alert, Checkbox, DescriptionList, DescriptionListDescription, DescriptionListGroup, DescriptionListTerm, Form, Modal,
  ModalVariant, Wizard, WizardHeader, WizardStep, useWizardContext,
} from "@patternfly/react-core";
import { useEffect, useState, type ReactNode } from "react";
import { ApiCallError } from "../api/client.ts";
import { TextField } from "../app/fields.tsx";
import { useSession } from "../app/session.ts";
import { createRequest, emptyVmForm, formFieldOf, localErrors, stepOf, type VmForm, type VmFormField, type VmWizardStep } from "./vm-form.ts";

type Errors = Partial<Record<VmFormField, string>>;

/** Inside the wizard: goes to the step of the first field with an error when the errors change. */
function GoToError({ errors }: { errors: Errors }) {
  const { goToStepById } = useWizardContext();
  useEffect(() => {
    const first = (Object.keys(errors) as VmFormField[]).find((f) => errors[f] !== undefined);
    if (first) goToStepById(stepOf(first));
  }, [errors, goToStepById]);
  return null;
}

function Review({ form }: { form: VmForm }) {
  const rows: [string, string][] = [
    ["Name", form.name], ["vCPUs", form.vcpus], ["Memory", `${form.memoryMib} MiB`],
    ["Kernel", form.kernelPath || "none"], ["Initrd", form.initrdPath || "none"], ["Kernel command line", form.append || "none"],
    ["Disk", form.diskSizeMib.trim() ? `${form.diskSizeMib} MiB` : "none"], ["Network", form.withNic ? "one NIC, MAC allocated by the cluster" : "none"],
  ];
  return (
    <DescriptionList isHorizontal isCompact>
      {rows.map(([t, d]) => (
        <DescriptionListGroup key={t}><DescriptionListTerm>{t}</DescriptionListTerm><DescriptionListDescription>{d}</DescriptionListDescription></DescriptionListGroup>
      ))}
    </DescriptionList>
  );
}

export function VmCreateWizard({ onClose, onCreated }: { onClose(): void; onCreated(name: string): void }) {
  const { client } = useSession();
  const [form, setForm] = useState<VmForm>(emptyVmForm);
  const [errors, setErrors] = useState<Errors>({});
  const [failure, setFailure] = useState<string>();
  const [startNow, setStartNow] = useState(false);
  const [busy, setBusy] = useState(false);
  const set = (field: VmFormField) => (value: string) => { setForm((f) => ({ ...f, [field]: value })); setErrors((e) => ({ ...e, [field]: undefined })); };
  const text = (field: Exclude<VmFormField, "withNic">, label: string, hint?: string, required?: boolean) => (
    <TextField id={`vm-${field}`} label={label} value={form[field]} onChange={set(field)} error={errors[field]} hint={hint} isRequired={required} />
  );

  const create = async () => {
    const local = localErrors(form);
    if (Object.keys(local).length > 0) return setErrors(local);
    setBusy(true);
    setFailure(undefined);
    try {
      const res = await client.call("VmService/CreateVm", createRequest(form, startNow));
      onCreated(res.vm?.name ?? form.name.trim());
    } catch (err) {
      const e = err instanceof ApiCallError ? err : new ApiCallError("internal", String(err), 0);
      const field = formFieldOf(e.field);
      if (field) setErrors({ [field]: e.message.replace(/^field "[^"]*":\s*/, "") });
      else setFailure(e.message);
    } finally {
      setBusy(false);
    }
  };
  const step = (id: VmWizardStep, name: string, body: ReactNode) => (
    <WizardStep id={id} name={name} key={id}>
      <Form onSubmit={(e) => e.preventDefault()}>{body}</Form>
    </WizardStep>
  );

  return (
    <Modal variant={ModalVariant.large} isOpen onEscapePress={onClose} aria-label="New virtual machine">
      <Wizard height={560} onClose={onClose} onSave={() => void create()}
        header={<WizardHeader title="New virtual machine" onClose={onClose} closeButtonAriaLabel="Close the wizard" />}>
        {step("basics", "Basics", <>
          {text("name", "Name", "A DNS label: lower-case letters, digits and dashes.", true)}
          {text("vcpus", "vCPUs", undefined, true)}
          {text("memoryMib", "Memory (MiB)", undefined, true)}
        </>)}
        {step("boot", "Boot", <>
          <Alert variant="info" isInline isPlain title="Direct kernel boot: the kernel and initrd are files on the nodes." />
          {text("kernelPath", "Kernel path", "Absolute path on the nodes, e.g. /var/lib/trivet/images/vmlinuz.")}
          {text("initrdPath", "Initrd path", "Optional.")}
          {text("append", "Kernel command line", "console=ttyS0 sends the kernel's output to the serial console.")}
        </>)}
        {step("storage", "Storage and network", <>
          {text("diskSizeMib", "Disk size (MiB)", "Empty: no disk.")}
          <Checkbox id="vm-withNic" label="One network interface (MAC address allocated by the cluster)" isChecked={form.withNic}
            onChange={(_e, on) => setForm((f) => ({ ...f, withNic: on }))} />
        </>)}
        <WizardStep id="review" name="Review" key="review" footer={{ nextButtonText: busy ? "Creating…" : "Create", isNextDisabled: busy }}>
          <GoToError errors={errors} />
          {failure && <Alert variant="danger" isInline title={`Not created: ${failure}`} className="pf-v6-u-mb-md" />}
          <Review form={form} />
          <Checkbox id="vm-start" className="pf-v6-u-mt-md" label="Start the virtual machine once created" isChecked={startNow} onChange={(_e, on) => setStartNow(on)} />
        </WizardStep>
      </Wizard>
    </Modal>
  );
}
