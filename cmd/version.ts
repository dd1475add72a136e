// The version of this build. The bundler replaces TRIVET_BUILD_INFO at build time; running from
// source (tsx) reads package.json instead.
import { readFileSync } from "node:fs";

declare const TRIVET_BUILD_INFO: { version: string; commit: string; builtAt: string } | undefined;

export interface BuildInfo {
  version: string;
  commit: string;
  builtAt: string;
}

export function buildInfo(): BuildInfo {
  if (typeof TRIVET_BUILD_INFO !== "undefined") return TRIVET_BUILD_INFO;
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
  return { version: pkg.version, commit: "source", builtAt: "" };
}
