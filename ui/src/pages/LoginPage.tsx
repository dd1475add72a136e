// The login page: username and password, a session on success. A failed login says why on the
// field the API names, or above the form (wrong password, throttled, node unreachable).
import { ActionGroup, Alert, Button, Form, LoginPage as PfLoginPage } from "@patternfly/react-core";
import { useState, type FormEvent } from "react";
import { ApiCallError, type ApiClient } from "../api/client.ts";
import type { User } from "../api/types.ts";
import { fieldError, TextField } from "../app/fields.tsx";

interface Props {
  client: ApiClient;
  message?: string;
  onLoggedIn(user: User): void;
}

export function LoginPage({ client, message, onLoggedIn }: Props) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<ApiCallError>();
  const [busy, setBusy] = useState(false);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    client.login(username, password).then(
      (r) => (r.user ? onLoggedIn(r.user) : setError(new ApiCallError("internal", "the login answer named no user", 200))),
      (err: unknown) => setError(err instanceof ApiCallError ? err : new ApiCallError("internal", String(err), 0)),
    ).finally(() => setBusy(false));
  };

  const userErr = fieldError(error, "username");
  const passErr = fieldError(error, "password");
  const formErr = error && !userErr && !passErr ? error.message : undefined;
  return (
    <PfLoginPage loginTitle="Sign in to Trivet" textContent="Trivet: virtual machines and storage on a small cluster. Any node serves this console.">
      <Form onSubmit={submit} aria-label="Sign in">
        {message && !error && <Alert variant="info" isInline isPlain title={message} />}
        {formErr && <Alert variant="danger" isInline title={formErr} />}
        <TextField id="username" label="Username" value={username} onChange={setUsername} autoComplete="username" autoFocus isRequired error={userErr} />
        <TextField id="password" label="Password" type="password" value={password} onChange={setPassword} autoComplete="current-password" isRequired error={passErr} />
        <ActionGroup>
          <Button type="submit" variant="primary" isBlock isLoading={busy} isDisabled={busy}>Sign in</Button>
        </ActionGroup>
      </Form>
    </PfLoginPage>
  );
}
