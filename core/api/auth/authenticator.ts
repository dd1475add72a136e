// Turns the credentials of a request into a Principal, against the local replica:
//  - `authorization: Bearer trv_<id>_<secret>`: an API token (not revoked, not expired);
//  - `authorization: Bearer <session id>`: a session, for clients that are not browsers (no
//    CSRF token needed: a bearer header is never sent by a browser on its own);
//  - the trivet_session cookie: a browser session; mutations also need X-CSRF-Token matching
//    the session's, because a cookie is sent with cross-site requests.
// The user must exist and not be disabled. Reads the local replica: a token revoked through
// Raft is refused on a node as soon as that node has applied the revocation.
import { ApiError } from "../server/errors.ts";
import type { Credentials } from "../server/dispatch.ts";
import type { Principal } from "../server/service.ts";
import type { Replica } from "../../state/replica.ts";
import { grantsOf, sessionByHash, tokenById, userById } from "./auth-store.ts";
import { parseApiToken, sameDigest, sha256Hex, tokenPrefix } from "./credentials.ts";

const unauthenticated = (message: string, reason: string) => new ApiError("unauthenticated", message, { reason });

export class Authenticator {
  constructor(private readonly replica: Replica) {}

  authenticate(creds: Credentials, opts: { mutation: boolean; nowMs: number }): Principal {
    if (creds.bearer) {
      return creds.bearer.startsWith(tokenPrefix) ? this.byToken(creds.bearer, opts.nowMs) : this.bySession(creds.bearer, undefined, false, opts.nowMs);
    }
    if (creds.sessionId) return this.bySession(creds.sessionId, creds.csrfToken, opts.mutation, opts.nowMs);
    throw unauthenticated("not authenticated: send `authorization: Bearer <API token>` or log in (AuthService.Login)", "no_credentials");
  }

  private byToken(token: string, nowMs: number): Principal {
    const parsed = parseApiToken(token);
    if (!parsed) throw unauthenticated("the API token is malformed (expected trv_<16 hex>_<43 base64url>)", "token_malformed");
    const { value: row } = this.replica.stateMachine.read((db) => tokenById(db, parsed.id));
    if (!row || !sameDigest(row.secretHash, sha256Hex(parsed.secret))) throw unauthenticated("the API token is not valid", "token_invalid");
    if (row.revokedAtMs !== 0) throw unauthenticated(`API token ${row.id} ("${row.name}") was revoked`, "token_revoked");
    if (row.expiresAtMs !== 0 && row.expiresAtMs <= nowMs) throw unauthenticated(`API token ${row.id} ("${row.name}") has expired; create a new one`, "token_expired");
    return this.principal(row.userId, { kind: "token", id: row.id });
  }

  private bySession(sessionId: string, csrfToken: string | undefined, checkCsrf: boolean, nowMs: number): Principal {
    const idHash = sha256Hex(sessionId);
    const { value: s } = this.replica.stateMachine.read((db) => sessionByHash(db, idHash));
    if (!s) throw unauthenticated("the session is not valid (logged out, or from another cluster); log in again", "session_invalid");
    if (s.expiresAtMs <= nowMs) throw unauthenticated("the session has expired; log in again", "session_expired");
    if (checkCsrf) {
      if (!csrfToken) throw new ApiError("permission_denied", "a change made with a session cookie needs the X-CSRF-Token header (the csrf_token returned by Login)", { reason: "csrf_missing", field: "x-csrf-token" });
      if (!sameDigest(s.csrfHash, sha256Hex(csrfToken))) throw new ApiError("permission_denied", "the X-CSRF-Token header does not match the session", { reason: "csrf_mismatch", field: "x-csrf-token" });
    }
    return this.principal(s.userId, { kind: "session", id: idHash });
  }

  private principal(userId: string, credential: Principal["credential"]): Principal {
    const { value: user } = this.replica.stateMachine.read((db) => userById(db, userId));
    if (!user) throw unauthenticated("the user of these credentials no longer exists", "user_deleted");
    if (user.disabled) throw unauthenticated(`user "${user.username}" is disabled`, "user_disabled");
    // Grants are read only when a check needs them (an Administrator's never do): a user may
    // hold many, and this runs on every request.
    const sm = this.replica.stateMachine;
    let grants: Principal["grants"] | undefined;
    return {
      userId, username: user.username, role: user.role, credential,
      get grants() {
        grants ??= sm.read((db) => grantsOf(db, userId)).value;
        return grants;
      },
    };
  }
}
