// The app's top level: checks for a session on load, shows the login page or the console, and
// returns to the login page with a message when the session ends (401 from any call).
import { Bullseye, Spinner } from "@patternfly/react-core";
import { useCallback, useEffect, useMemo, useState } from "react";
import { ApiClient, browserTokenStore } from "../api/client.ts";
import type { User } from "../api/types.ts";
import { LoginPage } from "../pages/LoginPage.tsx";
import { SessionContext, sessionOf } from "./session.ts";
import { Shell } from "./Shell.tsx";

type Phase = { kind: "checking" } | { kind: "login"; message?: string } | { kind: "ready"; user: User };

/** Why the session ended, by the API's reason (core/api/auth/authenticator.ts). */
function endedMessage(reason: string | undefined): string {
  if (reason === "session_expired") return "Your session has expired. Sign in again.";
  if (reason === "user_disabled" || reason === "user_deleted") return "Your account was disabled or deleted; ask an administrator.";
  return "Your session has ended (signed out elsewhere, or no longer valid). Sign in again.";
}

export function App() {
  const [phase, setPhase] = useState<Phase>({ kind: "checking" });
  const client = useMemo(() => new ApiClient({
    tokens: browserTokenStore(window.localStorage),
    onUnauthenticated: (err) => setPhase((p) => (p.kind === "ready" ? { kind: "login", message: endedMessage(err.reason) } : p)),
  }), []);

  useEffect(() => {
    // Without the CSRF token (another node's origin, or after logout) the session cannot
    // change anything: sign in again rather than show a console whose buttons fail.
    if (!client.hasCsrfToken) {
      setPhase({ kind: "login" });
      return;
    }
    client.call("AuthService/WhoAmI", {}).then(
      (r) => setPhase(r.user ? { kind: "ready", user: r.user } : { kind: "login" }),
      () => setPhase({ kind: "login" }),
    );
  }, [client]);

  const logout = useCallback(() => {
    client.logout().catch(() => undefined).finally(() => setPhase({ kind: "login", message: "You have signed out." }));
  }, [client]);

  const session = useMemo(() => (phase.kind === "ready" ? sessionOf(client, phase.user, logout) : null), [client, phase, logout]);

  if (phase.kind === "checking") return <Bullseye><Spinner aria-label="Checking the session" /></Bullseye>;
  if (phase.kind === "login" || !session) {
    return <LoginPage client={client} message={phase.kind === "login" ? phase.message : undefined} onLoggedIn={(user) => setPhase({ kind: "ready", user })} />;
  }
  return <SessionContext.Provider value={session}><Shell /></SessionContext.Provider>;
}
