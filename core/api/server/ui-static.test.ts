// The UI middleware in front of a hono app with an API route: files with their types and cache
// rules, the SPA fallback, the API left alone, paths outside the UI refused, gzip, headers.
import { gunzipSync } from "node:zlib";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { immutableCacheControl, relativeUiPath, uiStatic, type UiFileSource } from "./ui-static.ts";

const files: Record<string, string> = {
  "index.html": "<!doctype html><title>Trivet</title>",
  "assets/app-ABC.js": "console.log('ui');".repeat(50),
  "assets/font-X.woff2": "wOF2",
};
const source: UiFileSource = { read: (rel) => (rel in files ? { bytes: new TextEncoder().encode(files[rel]), version: "1" } : undefined) };

function app(src: UiFileSource = source): Hono {
  const a = new Hono();
  a.post("/api/v1/:service/:method", (c) => c.json({ ok: c.req.param("method") }));
  a.use("*", uiStatic({ files: src }));
  return a;
}

describe("uiStatic", () => {
  it("serves hashed assets as immutable with their type and the security headers", async () => {
    const r = await app().request("/assets/app-ABC.js");
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(r.headers.get("cache-control")).toBe(immutableCacheControl);
    expect(r.headers.get("content-security-policy")).toContain("default-src 'self'");
    expect(r.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    expect(r.headers.get("x-content-type-options")).toBe("nosniff");
    expect(await r.text()).toBe(files["assets/app-ABC.js"]);
    expect((await app().request("/assets/font-X.woff2")).headers.get("content-type")).toBe("font/woff2");
  });

  it("answers / and unknown page paths with index.html, never cached", async () => {
    for (const p of ["/", "/nodes", "/vms/web1"]) {
      const r = await app().request(p);
      expect(r.status, p).toBe(200);
      expect(r.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(r.headers.get("cache-control")).toBe("no-cache");
      expect(await r.text()).toBe(files["index.html"]);
    }
  });

  it("answers 404 for a missing asset rather than HTML", async () => {
    const r = await app().request("/assets/app-OLD.js");
    expect(r.status).toBe(404);
    expect(r.headers.get("content-type")).toMatch(/^text\/plain/);
  });

  it("leaves the API to its routes, and API 404s are not the SPA", async () => {
    const r = await app().request("/api/v1/ClusterService/GetStatus", { method: "POST" });
    expect(await r.json()).toEqual({ ok: "GetStatus" });
    const miss = await app().request("/api/v2/nothing");
    expect(miss.status).toBe(404);
    expect(await miss.text()).not.toContain("<title>Trivet</title>");
  });

  it("refuses paths that leave the UI's folder", async () => {
    expect(relativeUiPath("/../../etc/passwd")).toBeUndefined();
    expect(relativeUiPath("/assets/%2e%2e/%2e%2e/x")).toBeUndefined();
    expect(relativeUiPath("/%E0%A4%A")).toBeUndefined();
    expect(relativeUiPath("/assets//a.js")).toBe("assets/a.js");
    expect((await app().request("/assets/%2e%2e/%2e%2e/package.json")).status).toBe(404);
  });

  it("gzips text when the browser accepts it, and HEAD has no body", async () => {
    const r = await app().request("/assets/app-ABC.js", { headers: { "accept-encoding": "gzip, br" } });
    expect(r.headers.get("content-encoding")).toBe("gzip");
    const body = new Uint8Array(await r.arrayBuffer());
    expect(Number(r.headers.get("content-length"))).toBe(body.byteLength);
    expect(gunzipSync(body).toString()).toBe(files["assets/app-ABC.js"]);
    const head = await app().request("/assets/app-ABC.js", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
  });

  it("says how to build the UI when it is missing", async () => {
    const r = await app({ read: () => undefined }).request("/nodes");
    expect(r.status).toBe(503);
    expect(await r.text()).toContain("npm run build:ui");
  });
});
