// A node's local identity and endpoints: `<data-dir>/node.json`, written last by `trivet init`
// or `trivet join` (its presence means the node is fully set up), read by `trivet serve`.
// Also the layout of the data directory, in one place.
import fs from "node:fs";
import path from "node:path";
import { ClusterError } from "./errors.ts";

export const defaultPorts = { api: 7443, peer: 7444, http: 8006 } as const;
export const nodeConfigVersion = 1;

export interface NodeConfig {
  version: number;
  nodeId: number;
  name: string;
  clusterName: string;
  /** host:port of the public gRPC API (TLS, bearer tokens; also where joiners knock). */
  apiAddress: string;
  /** host:port of node-to-node traffic (Raft and later storage), mutual TLS. */
  peerAddress: string;
  /** host:port of the HTTPS server (web UI and JSON API). */
  httpAddress: string;
  /**
   * Members' node-to-node addresses as the node learnt them when it joined: a new node must be
   * able to answer the leader before its replica holds the members table.
   */
  seedPeers?: Array<{ nodeId: number; peerAddress: string }>;
}

export const dataLayout = (dataDir: string) => ({
  nodeConfig: path.join(dataDir, "node.json"),
  tlsDir: path.join(dataDir, "tls"),
  caCert: path.join(dataDir, "tls", "ca.crt"),
  nodeCert: path.join(dataDir, "tls", "node.crt"),
  nodeKey: path.join(dataDir, "tls", "node.key"),
  stateDir: path.join(dataDir, "state"),
});

const hostPort = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

export function checkHostPort(field: string, v: unknown): string {
  const m = typeof v === "string" ? hostPort.exec(v) : null;
  const port = m ? Number(m[2]) : 0;
  if (!m || port < 1 || port > 65535) throw new ClusterError("invalid_argument", `${field}: must be host:port with a port from 1 to 65535 (got ${JSON.stringify(v)})`);
  return v as string;
}

/** The host part of host:port (brackets of an IPv6 literal removed). */
export function hostOf(address: string): string {
  return address.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");
}

export function readNodeConfig(dataDir: string): NodeConfig {
  const file = dataLayout(dataDir).nodeConfig;
  let raw: string;
  try {
    raw = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new ClusterError("not_initialized", `${file} not found: this data directory holds no node; run 'trivet init' or 'trivet join' first`, { cause: err });
  }
  const c = JSON.parse(raw) as NodeConfig;
  if (c.version !== nodeConfigVersion) throw new ClusterError("invalid_argument", `${file}: version ${c.version} is not supported by this build (expects ${nodeConfigVersion})`);
  if (!Number.isSafeInteger(c.nodeId) || c.nodeId < 1) throw new ClusterError("invalid_argument", `${file}: nodeId must be a positive integer`);
  checkHostPort(`${file}: apiAddress`, c.apiAddress);
  checkHostPort(`${file}: peerAddress`, c.peerAddress);
  checkHostPort(`${file}: httpAddress`, c.httpAddress);
  return c;
}

/** Written atomically (temp file, fsync, rename) so a crash never leaves half a config. */
export function writeNodeConfig(dataDir: string, c: NodeConfig): void {
  const file = dataLayout(dataDir).nodeConfig;
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, "w", 0o600);
  try {
    fs.writeSync(fd, `${JSON.stringify(c, null, 2)}\n`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

export function isInitialized(dataDir: string): boolean {
  return fs.existsSync(dataLayout(dataDir).nodeConfig);
}

export function writePrivateFile(file: string, content: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.writeFileSync(file, content, { mode: 0o600 });
}
