// Setting a node up: `trivet init` (a new cluster: CA, the node's certificate, a one-voter Raft
// group, the first administrator) and `trivet join` (an existing cluster, through a join
// token). Both write node.json last, so a data directory either holds a complete node or is
// refused by `trivet serve` with a clear message. Neither leaves a daemon running: `trivet
// serve` (or the demo) runs the node afterwards.
import { X509Certificate } from "node:crypto";
import fs from "node:fs";
import { bootstrapAdmin } from "../api/auth/bootstrap.ts";
import { ApiClient } from "../api/client.ts";
import { ClusterService } from "../api/gen/trivet/v1/cluster_pb.ts";
import type { Logger } from "../raft/types.ts";
import { Daemon } from "./daemon.ts";
import { ClusterError } from "./errors.ts";
import { dataLayout, hostOf, isInitialized, nodeConfigVersion, writeNodeConfig, writePrivateFile, type NodeConfig } from "./node-config.ts";
import { certFingerprint, createClusterCa, createCsr, cryptoRandom, generateNodeKey, newSerial, signNodeCert } from "./pki.ts";
import { loadOrCreateKek, sealSecret, secretsDir, writeKek } from "./secrets.ts";
import { bootstrapChannelCredentials, fetchPinnedCa } from "./tls.ts";
import { parseJoinToken } from "./tokens.ts";

export const leaderWaitMsMax = 15_000;

export interface Endpoints {
  apiAddress: string;
  peerAddress: string;
  httpAddress: string;
}

export interface InitOptions extends Endpoints {
  dataDir: string;
  clusterName: string;
  nodeName: string;
  adminUser: string;
  adminPassword: string;
  logger: Logger;
  nowMs?: number;
}

function refuseInitialized(dataDir: string): void {
  if (isInitialized(dataDir)) throw new ClusterError("already_initialized", `${dataDir} already holds a node (${dataLayout(dataDir).nodeConfig}); use 'trivet serve', or another --data-dir`);
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
}

function hostsOf(e: Endpoints): string[] {
  return [...new Set([e.apiAddress, e.peerAddress, e.httpAddress].map(hostOf))];
}

/** Creates a new cluster whose first member is this node (node id 1). */
export async function initCluster(o: InitOptions): Promise<{ caFingerprint: string }> {
  refuseInitialized(o.dataDir);
  const nowMs = o.nowMs ?? Date.now();
  const { kek } = loadOrCreateKek(secretsDir(o.dataDir));
  const ca = await createClusterCa({ clusterName: o.clusterName, nowMs, random: cryptoRandom });
  const { keyPem } = await generateNodeKey();
  const csrPem = await createCsr({ nodeName: o.nodeName, addresses: hostsOf(o), keyPem });
  const certPem = await signNodeCert({ ca, csrPem, nodeName: o.nodeName, addresses: hostsOf(o), nowMs, serial: newSerial() });
  const l = dataLayout(o.dataDir);
  writePrivateFile(l.caCert, ca.certPem);
  writePrivateFile(l.nodeCert, certPem);
  writePrivateFile(l.nodeKey, keyPem);
  const config: NodeConfig = { version: nodeConfigVersion, nodeId: 1, name: o.nodeName, clusterName: o.clusterName, apiAddress: o.apiAddress, peerAddress: o.peerAddress, httpAddress: o.httpAddress };
  const daemon = await Daemon.start({ dataDir: o.dataDir, config, logger: o.logger, initialMembers: new Map([[1, o.peerAddress]]), roles: false });
  try {
    await daemon.replica.host.waitForLeader(leaderWaitMsMax);
    const r = daemon.replica;
    const must = async (name: string, payload: unknown) => {
      const res = await r.execute({ type: "ext", name, payload });
      if (!res.ok) throw new ClusterError("invalid_argument", `initializing the cluster: ${name}: ${res.message}`);
    };
    await must("cluster.init", { name: o.clusterName, caCertPem: ca.certPem, caKeySealed: sealSecret(ca.keyPem, kek) });
    await must("node.join", { name: o.nodeName, nodeId: 1, ...endpointsOf(o) });
    const c = new X509Certificate(certPem);
    await must("node_cert.record", { nodeId: 1, name: o.nodeName, certPem, serial: c.serialNumber.toLowerCase(), notAfterMs: Date.parse(c.validTo) });
    await bootstrapAdmin(r, o.adminUser, o.adminPassword);
  } finally {
    await daemon.stop();
  }
  writeNodeConfig(o.dataDir, config);
  return { caFingerprint: certFingerprint(ca.certPem) };
}

function endpointsOf(e: Endpoints): Endpoints {
  return { apiAddress: e.apiAddress, peerAddress: e.peerAddress, httpAddress: e.httpAddress };
}

export interface JoinOptions extends Endpoints {
  dataDir: string;
  token: string;
  nodeName: string;
  logger: Logger;
}

/** Joins an existing cluster with a token; the node becomes a learner and is promoted once caught up. */
export async function joinCluster(o: JoinOptions): Promise<{ nodeId: number; clusterName: string; via: string }> {
  const token = parseJoinToken(o.token, Date.now());
  refuseInitialized(o.dataDir);
  const { keyPem } = await generateNodeKey();
  const csrPem = await createCsr({ nodeName: o.nodeName, addresses: hostsOf(o), keyPem });
  const failures: string[] = [];
  for (const address of token.addresses) {
    try {
      const caPem = await fetchPinnedCa(address, token.caFingerprint);
      const client = new ApiClient(address, bootstrapChannelCredentials(caPem));
      try {
        const res = await client.call(ClusterService, "join", { token: o.token, name: o.nodeName, csrPem, ...endpointsOf(o) });
        const l = dataLayout(o.dataDir);
        writePrivateFile(l.caCert, res.caPem);
        writePrivateFile(l.nodeCert, res.certPem);
        writePrivateFile(l.nodeKey, keyPem);
        writeKek(secretsDir(o.dataDir), res.clusterKey);
        const nodeId = Number(res.nodeId);
        const seedPeers = res.members.filter((m) => Number(m.id) !== nodeId).map((m) => ({ nodeId: Number(m.id), peerAddress: m.address }));
        writeNodeConfig(o.dataDir, { version: nodeConfigVersion, nodeId, name: o.nodeName, clusterName: res.clusterName, ...endpointsOf(o), seedPeers });
        return { nodeId, clusterName: res.clusterName, via: address };
      } finally {
        client.close();
      }
    } catch (err) {
      // A refusal by the cluster (bad token, name taken) is final; an unreachable member is not.
      if (err instanceof Error && "code" in err && ["permission_denied", "already_exists", "invalid_argument", "ca_fingerprint_mismatch"].includes(String((err as { code: unknown }).code))) throw err;
      failures.push(`${address}: ${(err as Error).message}`);
    }
  }
  throw new ClusterError("join_refused", `joining the cluster: no member answered (${failures.join("; ")})`);
}
