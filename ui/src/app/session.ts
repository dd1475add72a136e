// The signed-in session as the pages see it: the API client, who the user is and what their
// role lets them do. The UI hides what a role may not do; the API refuses it anyway.
import { createContext, useContext } from "react";
import type { ApiClient } from "../api/client.ts";
import type { User } from "../api/types.ts";

export interface Session {
  client: ApiClient;
  user: User;
  /** Administrators manage users, roles and tokens. */
  isAdmin: boolean;
  /** Administrators and Operators change things; Auditors only read. */
  canOperate: boolean;
  logout(): void;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error("useSession outside a signed-in page");
  return s;
}

export function sessionOf(client: ApiClient, user: User, logout: () => void): Session {
  return {
    client, user, logout,
    isAdmin: user.role === "ROLE_ADMINISTRATOR",
    canOperate: user.role === "ROLE_ADMINISTRATOR" || user.role === "ROLE_OPERATOR",
  };
}
