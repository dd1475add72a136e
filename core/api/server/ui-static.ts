// Serves the web UI (ui/dist, built by `npm run build:ui`) from every node's HTTPS server: from
// the SEA assets (keys "ui/<path>") inside the trivet binary, or from ui/dist on disk when
// running from source. Hashed files under assets/ are cached forever, index.html never (so a
// new binary's UI is picked up on reload); any other non-API GET answers index.html, the SPA
// routes its path. Every answer carries a CSP that allows only the node itself.
import { readFileSync, statSync } from "node:fs";
import path from "node:path";
import * as sea from "node:sea";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import type { Context, MiddlewareHandler } from "hono";

export interface UiFile {
  bytes: Uint8Array;
  /** Changes when the content does (for the compression cache). */
  version: string;
}

/** Where the UI's files come from; `rel` is a path like "index.html" or "assets/app-X.js". */
export interface UiFileSource {
  read(rel: string): UiFile | undefined;
}

export const uiAssetPrefix = "ui/";
export const defaultUiDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../ui/dist");

/** Files under `dir`, read on each request (a rebuild while the daemon runs is picked up). */
export function diskUiFiles(dir: string = defaultUiDir): UiFileSource {
  return {
    read(rel) {
      const file = path.join(dir, rel);
      try {
        const st = statSync(file);
        if (!st.isFile()) return undefined;
        return { bytes: readFileSync(file), version: `${st.size}-${st.mtimeMs}` };
      } catch {
        return undefined;
      }
    },
  };
}

/** Files embedded in the single executable (cmd/build/assets.mjs: ui/dist → "ui/…"). */
export function seaUiFiles(prefix = uiAssetPrefix): UiFileSource {
  return {
    read(rel) {
      try {
        return { bytes: new Uint8Array(sea.getAsset(prefix + rel)), version: "sea" };
      } catch {
        return undefined; // getAsset throws for a key that is not embedded
      }
    },
  };
}

export function defaultUiFiles(): UiFileSource {
  return sea.isSea() ? seaUiFiles() : diskUiFiles();
}

const contentTypes: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
  ".txt": "text/plain; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".woff": "font/woff",
};
const compressible = new Set([".html", ".js", ".css", ".json", ".map", ".txt", ".svg"]);
/** Paths that name a file: a miss is a 404, not the SPA (a missing script must not get HTML). */
const fileLike = /^assets\/|\.(js|css|map|json|txt|svg|png|ico|woff2?)$/;

export const uiSecurityHeaders: Readonly<Record<string, string>> = {
  // PatternFly's CSS embeds a few images as data: URIs; scripts, styles, fonts and API calls
  // come only from the node itself.
  "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; " +
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
};

export const immutableCacheControl = "public, max-age=31536000, immutable";

/** The relative file path of a URL path, or undefined when it tries to leave the UI's folder. */
export function relativeUiPath(urlPath: string): string | undefined {
  let p: string;
  try {
    p = decodeURIComponent(urlPath);
  } catch {
    return undefined;
  }
  if (p.includes("\0") || p.includes("\\")) return undefined;
  const parts = p.split("/").filter((s) => s !== "" && s !== ".");
  if (parts.includes("..")) return undefined;
  return parts.length === 0 ? "index.html" : parts.join("/");
}

export interface UiStaticOptions {
  files?: UiFileSource;
  /** Paths under this prefix are left to the API (next handler). */
  apiPrefix?: string;
}

/** A hono middleware serving the UI for GET/HEAD outside the API. */
export function uiStatic(opts: UiStaticOptions = {}): MiddlewareHandler {
  const files = opts.files ?? defaultUiFiles();
  const apiPrefix = opts.apiPrefix ?? "/api/";
  // Gzipped bodies by path; bounded by the number of files the UI has (only hits are cached).
  const gzipped = new Map<string, { version: string; bytes: Uint8Array }>();

  const gzipOf = (rel: string, f: UiFile): Uint8Array => {
    const hit = gzipped.get(rel);
    if (hit?.version === f.version) return hit.bytes;
    const bytes = new Uint8Array(gzipSync(f.bytes));
    gzipped.set(rel, { version: f.version, bytes });
    return bytes;
  };

  const send = (c: Context, rel: string, f: UiFile, status: 200 | 404 = 200): Response => {
    const ext = path.extname(rel);
    const headers = new Headers(uiSecurityHeaders);
    headers.set("content-type", contentTypes[ext] ?? "application/octet-stream");
    headers.set("cache-control", rel.startsWith("assets/") ? immutableCacheControl : "no-cache");
    let body = f.bytes;
    if (compressible.has(ext)) {
      headers.set("vary", "accept-encoding");
      if (/\bgzip\b/.test(c.req.header("accept-encoding") ?? "")) {
        body = gzipOf(rel, f);
        headers.set("content-encoding", "gzip");
      }
    }
    headers.set("content-length", String(body.byteLength));
    return new Response(c.req.method === "HEAD" ? null : body, { status, headers });
  };

  const plain = (status: 404 | 503, text: string): Response =>
    new Response(text, { status, headers: { ...uiSecurityHeaders, "content-type": "text/plain; charset=utf-8", "cache-control": "no-cache" } });

  return async (c, next) => {
    const urlPath = c.req.path;
    if ((c.req.method !== "GET" && c.req.method !== "HEAD") || urlPath.startsWith(apiPrefix) || urlPath === apiPrefix.replace(/\/$/, "")) return next();
    const rel = relativeUiPath(urlPath);
    if (rel === undefined) return plain(404, `no such file: ${urlPath}\n`);
    const f = files.read(rel);
    if (f) return send(c, rel, f);
    if (fileLike.test(rel)) return plain(404, `no such file in the web UI: ${urlPath}\n`);
    const index = files.read("index.html");
    if (!index) return plain(503, "The web UI is not built into this node: run `npm run build:ui` (or use a binary from `npm run build`).\n");
    return send(c, "index.html", index);
  };
}
