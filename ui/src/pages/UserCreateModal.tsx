// The "Create user" dialog: username, password and role; the API's validation errors appear on
// the field they name (username pattern, password length), anything else above the form.
import { Alert, Button, Form, FormGroup, FormSelect, FormSelectOption, Modal, ModalBody, ModalFooter, ModalHeader } from "@patternfly/react-core";
import { useState, type FormEvent } from "react";
import { ApiCallError } from "../api/client.ts";
import type { Role, User } from "../api/types.ts";
import { fieldError, TextField } from "../app/fields.tsx";
import { roleLabel } from "../app/format.ts";
import { useSession } from "../app/session.ts";

const roles: Role[] = ["ROLE_OPERATOR", "ROLE_AUDITOR", "ROLE_ADMINISTRATOR"];

export function UserCreateModal({ onClose, onCreated }: { onClose(): void; onCreated(u: User): void }) {
  const { client } = useSession();
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [role, setRole] = useState<Role>("ROLE_OPERATOR");
  const [error, setError] = useState<ApiCallError>();
  const [busy, setBusy] = useState(false);

  const submit = (e?: FormEvent) => {
    e?.preventDefault();
    setBusy(true);
    client.call("UserService/CreateUser", { username, password, role }).then(
      (r) => (r.user ? onCreated(r.user) : onClose()),
      (err: unknown) => setError(err instanceof ApiCallError ? err : new ApiCallError("internal", String(err), 0)),
    ).finally(() => setBusy(false));
  };

  const userErr = fieldError(error, "username");
  const passErr = fieldError(error, "password");
  const roleErr = fieldError(error, "role");
  const formErr = error && !userErr && !passErr && !roleErr ? error.message : undefined;
  return (
    <Modal isOpen onClose={onClose} variant="small" aria-labelledby="create-user-title">
      <ModalHeader title="Create user" labelId="create-user-title" />
      <ModalBody>
        {formErr && <Alert variant="danger" isInline title={formErr} className="pf-v6-u-mb-md" />}
        <Form id="create-user-form" onSubmit={submit}>
          <TextField id="new-username" label="Username" value={username} onChange={setUsername} autoFocus isRequired
            error={userErr} hint="1–64 characters: a-z, 0-9, “.”, “_”, “-”" autoComplete="off" />
          <TextField id="new-password" label="Password" type="password" value={password} onChange={setPassword} isRequired
            error={passErr} hint="12–256 characters" autoComplete="new-password" />
          <FormGroup label="Role" fieldId="new-role" isRequired>
            <FormSelect id="new-role" value={role} onChange={(_e, v) => setRole(v as Role)} validated={roleErr ? "error" : "default"}>
              {roles.map((r) => <FormSelectOption key={r} value={r} label={roleLabel[r]} />)}
            </FormSelect>
          </FormGroup>
        </Form>
      </ModalBody>
      <ModalFooter>
        <Button type="submit" form="create-user-form" variant="primary" isLoading={busy} isDisabled={busy}>Create</Button>
        <Button variant="link" onClick={onClose}>Cancel</Button>
      </ModalFooter>
    </Modal>
  );
}
