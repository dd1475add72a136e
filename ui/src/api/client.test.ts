// The API client against a fake fetch: the CSRF token travels on calls after Login, API errors
// come back with their field, and a 401 sends the app back to the login page.
import { describe, expect, it } from "vitest";
import { ApiCallError, ApiClient, type TokenStore } from "./client.ts";

function memoryTokens(): TokenStore & { value: string | null } {
  const s = { value: null as string | null, get: () => s.value, set: (t: string | null) => { s.value = t; } };
  return s;
}

function fakeFetch(answer: (url: string, init: RequestInit) => Response) {
  const calls: { url: string; init: RequestInit }[] = [];
  const f = (async (url: string, init: RequestInit) => {
    calls.push({ url, init });
    return answer(url, init);
  }) as unknown as typeof fetch;
  return { f, calls };
}

const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

describe("ApiClient", () => {
  it("logs in, keeps the CSRF token and sends it on later calls", async () => {
    const tokens = memoryTokens();
    const { f, calls } = fakeFetch((url) => (url.endsWith("/Login") ? json(200, { csrfToken: "c1", sessionId: "", expiresAtMs: "1" }) : json(200, { users: [] })));
    const c = new ApiClient({ fetch: f, tokens });
    await c.login("admin", "pw");
    expect(tokens.value).toBe("c1");
    await c.call("UserService/ListUsers", {});
    expect(calls[0]!.url).toBe("/api/v1/AuthService/Login");
    expect(JSON.parse(String(calls[0]!.init.body))).toEqual({ username: "admin", password: "pw", kind: "CREDENTIAL_KIND_SESSION" });
    expect((calls[1]!.init.headers as Record<string, string>)["x-csrf-token"]).toBe("c1");
  });

  it("turns an API error into an ApiCallError naming the field", async () => {
    const { f } = fakeFetch(() => json(400, { error: { code: "invalid_argument", message: "username: bad", field: "username", reason: "pattern" } }));
    const c = new ApiClient({ fetch: f, tokens: memoryTokens() });
    const err = await c.call("UserService/CreateUser", { username: "Bad!", password: "x", role: "ROLE_AUDITOR" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiCallError);
    expect(err).toMatchObject({ code: "invalid_argument", field: "username", status: 400, message: "username: bad" });
  });

  it("reports a 401 (but not a failed login) as the end of the session", async () => {
    const ended: string[] = [];
    const { f } = fakeFetch(() => json(401, { error: { code: "unauthenticated", message: "the session has expired; log in again" } }));
    const c = new ApiClient({ fetch: f, tokens: memoryTokens(), onUnauthenticated: (e) => ended.push(e.message) });
    await expect(c.login("admin", "wrong")).rejects.toMatchObject({ code: "unauthenticated" });
    expect(ended).toEqual([]);
    await expect(c.call("ClusterService/GetStatus", {})).rejects.toMatchObject({ status: 401 });
    expect(ended).toEqual(["the session has expired; log in again"]);
  });

  it("treats a CSRF refusal as the end of the session, but not a permission refusal", async () => {
    const ended: string[] = [];
    let reason = "csrf_mismatch";
    const { f } = fakeFetch(() => json(403, { error: { code: "permission_denied", message: `refused (${reason})`, reason } }));
    const c = new ApiClient({ fetch: f, tokens: memoryTokens(), onUnauthenticated: (e) => ended.push(e.message) });
    await expect(c.call("UserService/DeleteUser", { username: "bob" })).rejects.toMatchObject({ status: 403 });
    reason = "users.manage";
    await expect(c.call("UserService/DeleteUser", { username: "bob" })).rejects.toMatchObject({ status: 403 });
    expect(ended).toEqual(["refused (csrf_mismatch)"]);
  });

  it("describes a non-JSON failure and an unreachable node", async () => {
    const c1 = new ApiClient({ fetch: fakeFetch(() => new Response("<html>bad gateway</html>", { status: 502 })).f, tokens: memoryTokens() });
    await expect(c1.call("ClusterService/GetStatus", {})).rejects.toMatchObject({ code: "internal", message: "calling ClusterService.GetStatus: HTTP 502" });
    const down = (async () => { throw new TypeError("Failed to fetch"); }) as unknown as typeof fetch;
    const c2 = new ApiClient({ fetch: down, tokens: memoryTokens() });
    await expect(c2.call("ClusterService/GetStatus", {})).rejects.toMatchObject({ code: "unavailable", status: 0 });
  });

  it("forgets the CSRF token on logout even when the server refuses", async () => {
    const tokens = memoryTokens();
    tokens.set("c1");
    const c = new ApiClient({ fetch: fakeFetch(() => json(401, { error: { code: "unauthenticated", message: "gone" } })).f, tokens });
    await expect(c.logout()).rejects.toBeInstanceOf(ApiCallError);
    expect(tokens.value).toBeNull();
  });
});
