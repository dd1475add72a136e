import { describe, expect, it } from "vitest";
import { checkOrigin, parseConsoleRoute, selectProtocol, upgradeCredentials } from "./upgrade-auth.ts";

describe("console upgrade requests", () => {
  it("routes serial, vnc and shell paths and nothing else", () => {
    expect(parseConsoleRoute("/api/v1/console/serial/web1")).toEqual({ kind: "serial", vm: "web1" });
    expect(parseConsoleRoute("/api/v1/console/vnc/web%2D1")).toEqual({ kind: "vnc", vm: "web-1" });
    expect(parseConsoleRoute("/api/v1/console/shell/n2")).toEqual({ kind: "shell", node: "n2" });
    for (const p of ["/api/v1/console/serial/", "/api/v1/console/serial/a/b", "/api/v1/console/tty/a", "/api/v1/UserService/ListUsers", "/api/v1/console/vnc/%E0"]) expect(parseConsoleRoute(p)).toBeUndefined();
  });

  it("takes a bearer header over a cookie, and the CSRF token from the subprotocols", () => {
    expect(upgradeCredentials({ authorization: "Bearer tok", cookie: "trivet_session=s" })).toEqual({ credentials: { bearer: "tok" }, viaCookie: false });
    expect(upgradeCredentials({ cookie: "a=b; trivet_session=s1", "sec-websocket-protocol": "binary, trivet-csrf.c1" })).toEqual({ credentials: { sessionId: "s1", csrfToken: "c1" }, viaCookie: true });
    expect(upgradeCredentials({})).toEqual({ credentials: { sessionId: undefined, csrfToken: undefined }, viaCookie: false });
  });

  it("accepts only this node's Origin, and no Origin only without a cookie", () => {
    expect(() => checkOrigin({ host: "10.0.0.1:8006", origin: "https://10.0.0.1:8006" }, true)).not.toThrow();
    expect(() => checkOrigin({ host: "10.0.0.1:8006" }, false)).not.toThrow();
    expect(() => checkOrigin({ host: "10.0.0.1:8006" }, true)).toThrow(expect.objectContaining({ reason: "origin_missing" }));
    expect(() => checkOrigin({ host: "10.0.0.1:8006", origin: "https://10.0.0.1:8007" }, false)).toThrow(expect.objectContaining({ reason: "origin_mismatch" }));
    expect(() => checkOrigin({ host: "10.0.0.1:8006", origin: "null" }, true)).toThrow(expect.objectContaining({ reason: "origin_mismatch" }));
  });

  it("never echoes the CSRF carrier as the subprotocol", () => {
    expect(selectProtocol(new Set(["trivet-csrf.x", "binary"]))).toBe("binary");
    expect(selectProtocol(new Set(["trivet-csrf.x"]))).toBe(false);
  });
});
