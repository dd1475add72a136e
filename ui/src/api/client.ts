// A typed client of the JSON API over fetch: POST /api/v1/<Service>/<Method> with proto3 JSON.
// The browser session travels in the HttpOnly trivet_session cookie (set by AuthService/Login);
// the CSRF token that Login returns is kept per origin and sent as X-CSRF-Token on every call.
// Every failure is an ApiCallError with the API's code, message, field and reason; a 401 also
// tells the app (onUnauthenticated) so it can go back to the login page.
import type { MethodName, Methods } from "./types.ts";

/** A call that takes longer than this is aborted: the node may be gone, try another. */
export const callTimeoutMs = 15_000;

export class ApiCallError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
    readonly field?: string,
    readonly reason?: string,
  ) {
    super(message);
    this.name = "ApiCallError";
  }
}

/** Where the CSRF token of the session is kept (localStorage in the browser). */
export interface TokenStore {
  get(): string | null;
  set(token: string | null): void;
}

export interface ClientOptions {
  fetch?: typeof fetch;
  tokens: TokenStore;
  onUnauthenticated?: (err: ApiCallError) => void;
  timeoutMs?: number;
}

interface ErrorBody {
  error?: { code?: string; message?: string; field?: string; reason?: string };
}

/** The ApiCallError of a non-2xx response (the body may be anything: a proxy's HTML page). */
export function errorOf(status: number, text: string, doing: string): ApiCallError {
  let body: ErrorBody = {};
  try {
    body = JSON.parse(text) as ErrorBody;
  } catch {
    // not JSON: described by the status below
  }
  const e = body.error;
  if (e?.code && e.message) return new ApiCallError(e.code, e.message, status, e.field || undefined, e.reason || undefined);
  return new ApiCallError(status === 401 ? "unauthenticated" : "internal", `${doing}: HTTP ${status}`, status);
}

export class ApiClient {
  private readonly fetch: typeof fetch;

  constructor(private readonly opts: ClientOptions) {
    this.fetch = opts.fetch ?? ((input, init) => globalThis.fetch(input, init));
  }

  get hasCsrfToken(): boolean {
    return this.opts.tokens.get() !== null;
  }

  /** The session's CSRF token: the console WebSockets carry it as a subprotocol. */
  get csrfToken(): string | null {
    return this.opts.tokens.get();
  }

  /** `opts.timeoutMs`: for the few calls that take long by nature (verifying a whole volume). */
  async call<M extends MethodName>(method: M, req: Methods[M]["req"], opts: { timeoutMs?: number } = {}): Promise<Methods[M]["res"]> {
    const headers: Record<string, string> = { "content-type": "application/json" };
    const csrf = this.opts.tokens.get();
    if (csrf) headers["x-csrf-token"] = csrf;
    const doing = `calling ${method.replace("/", ".")}`;
    let res: Response;
    try {
      res = await this.fetch(`/api/v1/${method}`, {
        method: "POST", headers, body: JSON.stringify(req), credentials: "same-origin",
        signal: AbortSignal.timeout(opts.timeoutMs ?? this.opts.timeoutMs ?? callTimeoutMs),
      });
    } catch (err) {
      throw new ApiCallError("unavailable", `${doing}: this node did not answer (${(err as Error).message})`, 0);
    }
    const text = await res.text();
    if (!res.ok) {
      const err = errorOf(res.status, text, doing);
      // A CSRF refusal means the cookie now belongs to another session (a login on another
      // node of the same host): this page's session is over as surely as with a 401.
      const ended = res.status === 401 || (res.status === 403 && err.reason?.startsWith("csrf_") === true);
      if (ended && method !== "AuthService/Login") this.opts.onUnauthenticated?.(err);
      throw err;
    }
    return JSON.parse(text) as Methods[M]["res"];
  }

  /** Logs in with a browser session and keeps its CSRF token. */
  async login(username: string, password: string): Promise<Methods["AuthService/Login"]["res"]> {
    const res = await this.call("AuthService/Login", { username, password, kind: "CREDENTIAL_KIND_SESSION" });
    this.opts.tokens.set(res.csrfToken);
    return res;
  }

  /** Ends the session on the server (best effort: it may have expired already) and forgets it. */
  async logout(): Promise<void> {
    try {
      await this.call("AuthService/Logout", {});
    } finally {
      this.opts.tokens.set(null);
    }
  }
}

const csrfStorageKey = "trivet.csrf";

export function browserTokenStore(storage: Storage): TokenStore {
  return {
    get: () => storage.getItem(csrfStorageKey),
    set: (t) => (t === null ? storage.removeItem(csrfStorageKey) : storage.setItem(csrfStorageKey, t)),
  };
}
