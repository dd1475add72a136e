// ClusterService: cluster status and nodes, join tokens, node removal, and the Join call a
// joining node makes with its token. Served by the one API (gRPC and HTTPS) like every service.
import { X509Certificate } from "node:crypto";
import { ApiError, checkResult } from "../api/server/errors.ts";
import { defineService, PUBLIC, type HandlerContext, type RegisteredService } from "../api/server/service.ts";
import { check, intBetween, noFields } from "../api/server/validation.ts";
import { permissions } from "../api/auth/rbac.ts";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ClusterService, NodeHealth, NodeRole, type JoinRequest, type NodeSchema } from "../api/gen/trivet/v1/cluster_pb.ts";
import { ConfChangeType } from "../raft/types.ts";
import { readCluster, readJoinToken } from "./cluster-module.ts";
import { ClusterError } from "./errors.ts";
import { heartbeatIntervalMsDefault, nodeHealth } from "./liveness.ts";
import { checkHostPort, hostOf } from "./node-config.ts";
import { listNodeEndpoints, type NodeEndpoints } from "./node-module.ts";
import { certFingerprint, cryptoRandom, newSerial, signNodeCert } from "./pki.ts";
import { openSecret } from "./secrets.ts";
import { createJoinToken, hashJoinSecret, joinTokenTtlMsDefault, joinTokenTtlMsMax, parseJoinToken, verifyJoinSecret } from "./tokens.ts";

/** What the service needs from the running node. */
export interface ClusterNode {
  readonly config: { nodeId: number; name: string; clusterName: string };
  readonly identity: { caPem: string };
  readonly kek: Uint8Array;
}

const nodeNamePattern = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

function nodeMessage(n: NodeEndpoints, ctx: HandlerContext, leaderId: number, progress?: Map<number, { match: number }>): MessageInitShape<typeof NodeSchema> {
  const health = nodeHealth(n.heartbeatAtMs, ctx.nowMs, heartbeatIntervalMsDefault);
  return {
    id: BigInt(n.nodeId),
    name: n.name,
    address: n.apiAddress,
    role: n.role === "voter" ? NodeRole.VOTER : NodeRole.LEARNER,
    leader: n.nodeId === leaderId,
    health: health === "up" ? NodeHealth.HEALTHY : health === "down" ? NodeHealth.UNREACHABLE : NodeHealth.UNSPECIFIED,
    heartbeatAtMs: BigInt(n.heartbeatAtMs ?? 0),
    lastContactMs: BigInt(n.heartbeatAtMs === null ? -1 : Math.max(0, ctx.nowMs - n.heartbeatAtMs)),
    appliedIndex: BigInt(progress?.get(n.nodeId)?.match ?? 0),
  };
}

/** Raft roles from the live configuration, which is authoritative over the nodes table. */
function withRaftRoles(nodes: NodeEndpoints[], voters: readonly number[]): NodeEndpoints[] {
  return nodes.map((n) => ({ ...n, role: voters.includes(n.nodeId) ? "voter" : "learner" }));
}

function clusterRow(ctx: HandlerContext) {
  const c = ctx.replica.stateMachine.read(readCluster).value;
  if (!c) throw new ApiError("failed_precondition", "the cluster is not initialized (run 'trivet init')");
  return c;
}

function validateJoin(r: JoinRequest): void {
  check("token", r.token, (v) => (v.length > 0 && v.length <= 8192 ? undefined : "must be a join token from 'trivet cluster token create'"));
  check("name", r.name, (v) => (nodeNamePattern.test(v) ? undefined : "must be a lower-case DNS label of 1 to 63 characters"));
  check("csr_pem", r.csrPem, (v) => (v.includes("BEGIN CERTIFICATE REQUEST") && v.length < 16384 ? undefined : "must be a PEM certificate request"));
  for (const [field, v] of [["peer_address", r.peerAddress], ["api_address", r.apiAddress], ["http_address", r.httpAddress]] as const) {
    check(field, v, (x) => {
      try {
        checkHostPort(field, x);
        return undefined;
      } catch {
        return "must be host:port with a port from 1 to 65535";
      }
    });
  }
}

async function join(node: ClusterNode, req: JoinRequest, ctx: HandlerContext) {
  const { replica } = ctx;
  const cluster = clusterRow(ctx);
  let token;
  try {
    token = parseJoinToken(req.token, ctx.nowMs);
    if (token.caFingerprint !== certFingerprint(cluster.caCertPem)) throw new ClusterError("ca_fingerprint_mismatch", "join token: it was made for another cluster (CA fingerprint differs)");
    const record = replica.stateMachine.read((db) => readJoinToken(db, token!.id)).value;
    if (!record) throw new ClusterError("token_format", "join token: unknown to this cluster (it may have been made for another cluster, or pruned)");
    verifyJoinSecret({ ...record, usedAtMs: record.usedAtMs ?? undefined } as Parameters<typeof verifyJoinSecret>[0], token.secret, ctx.nowMs);
  } catch (err) {
    if (err instanceof ClusterError) throw new ApiError("permission_denied", err.message, { field: "token", reason: err.code });
    throw err;
  }
  if (replica.stateMachine.read(listNodeEndpoints).value.some((n) => n.name === req.name)) {
    throw new ApiError("already_exists", `a node named "${req.name}" is already a member; remove it first or choose another name`, { field: "name" });
  }
  // The log decides single use: of two joins racing with one token, only the first consume succeeds.
  const consumed = await replica.execute({ type: "ext", name: "join_token.consume", payload: { id: token.id, secretHash: hashJoinSecret(token.secret), usedBy: req.name } });
  if (!consumed.ok) throw new ApiError("permission_denied", `join token: ${consumed.message}`, { field: "token", reason: String(consumed.code) });
  const hosts = [...new Set([req.peerAddress, req.apiAddress, req.httpAddress].map(hostOf))];
  const certPem = await signNodeCert({ ca: { certPem: cluster.caCertPem, keyPem: openSecret(cluster.caKeySealed, node.kek).toString() }, csrPem: req.csrPem, nodeName: req.name, addresses: hosts, nowMs: ctx.nowMs, serial: newSerial() });
  const joined = checkResult(await replica.execute({ type: "ext", name: "node.join", payload: { name: req.name, peerAddress: req.peerAddress, apiAddress: req.apiAddress, httpAddress: req.httpAddress } }), `adding node "${req.name}"`);
  const nodeId = joined.nodeId as number;
  await replica.execute({ type: "ext", name: "node_cert.record", payload: { nodeId, name: req.name, certPem, ...certSerial(certPem) } });
  await replica.changeMembership({ type: ConfChangeType.AddLearner, nodeId, context: new TextEncoder().encode(req.peerAddress) });
  ctx.auditObject = `node/${req.name}`;
  ctx.auditDetail.nodeId = nodeId;
  const members = replica.stateMachine.read(listNodeEndpoints).value.map((n) => ({ ...nodeMessage(n, ctx, replica.host.leaderInfo().leader), address: n.peerAddress }));
  return { nodeId: BigInt(nodeId), clusterName: cluster.name, certPem, caPem: cluster.caCertPem, clusterKey: node.kek, members };
}

/** Serial and expiry of a PEM certificate. */
function certSerial(pem: string): { serial: string; notAfterMs: number } {
  const c = new X509Certificate(pem);
  return { serial: c.serialNumber.toLowerCase(), notAfterMs: Date.parse(c.validTo) };
}

async function removeNode(name: string, ctx: HandlerContext): Promise<void> {
  const { replica } = ctx;
  const n = replica.stateMachine.read(listNodeEndpoints).value.find((x) => x.name === name);
  if (!n) throw new ApiError("not_found", `node "${name}" is not a member`, { field: "name" });
  const { voters, learners } = replica.host.status().confState;
  if (voters.length === 1 && voters[0] === n.nodeId) throw new ApiError("failed_precondition", `node "${name}" is the only voter; the cluster would have no members left`, { field: "name" });
  if (voters.includes(n.nodeId) || learners.includes(n.nodeId)) await replica.changeMembership({ type: ConfChangeType.RemoveNode, nodeId: n.nodeId });
  checkResult(await replica.execute({ type: "ext", name: "node.leave", payload: { nodeId: n.nodeId } }), `removing node "${name}"`);
  await replica.execute({ type: "ext", name: "node_cert.remove", payload: { nodeId: n.nodeId } });
}

export function clusterService(node: ClusterNode): RegisteredService {
  return defineService({
    descriptor: ClusterService,
    policy: {
      getStatus: { permission: permissions.clusterRead, mutation: false },
      listNodes: { permission: permissions.clusterRead, mutation: false },
      createJoinToken: { permission: permissions.clusterManage, mutation: true, object: () => "cluster" },
      removeNode: { permission: permissions.clusterManage, mutation: true, object: (r) => `node/${r.name}` },
      join: { permission: PUBLIC, mutation: true, object: (r) => `node/${r.name}` },
    },
    validate: {
      getStatus: noFields,
      listNodes: noFields,
      createJoinToken: (r) => check("ttl_seconds", r.ttlSeconds, intBetween(0, joinTokenTtlMsMax / 1000)),
      removeNode: (r) => check("name", r.name, (v) => (nodeNamePattern.test(v) ? undefined : "must be a node name")),
      join: validateJoin,
    },
    handlers: {
      async getStatus(_req, ctx) {
        const cluster = clusterRow(ctx);
        const st = ctx.replica.host.status();
        const nodes = withRaftRoles(ctx.replica.stateMachine.read(listNodeEndpoints).value, st.confState.voters);
        return {
          clusterName: cluster.name, nodeName: node.config.name, term: BigInt(st.term), leaderId: BigInt(st.leader),
          commitIndex: BigInt(st.commit), appliedIndex: BigInt(st.appliedIndex), caFingerprint: certFingerprint(cluster.caCertPem),
          nodes: nodes.map((n) => nodeMessage(n, ctx, st.leader, st.progress)),
        };
      },
      async listNodes(_req, ctx) {
        const st = ctx.replica.host.status();
        return { nodes: withRaftRoles(ctx.replica.stateMachine.read(listNodeEndpoints).value, st.confState.voters).map((n) => nodeMessage(n, ctx, st.leader, st.progress)) };
      },
      async createJoinToken(req, ctx) {
        const cluster = clusterRow(ctx);
        const ttlMs = req.ttlSeconds > 0 ? req.ttlSeconds * 1000 : joinTokenTtlMsDefault;
        const addresses = ctx.replica.stateMachine.read(listNodeEndpoints).value.map((n) => n.apiAddress);
        const { token, record } = createJoinToken({ caFingerprint: certFingerprint(cluster.caCertPem), addresses, ttlMs, nowMs: ctx.nowMs, random: cryptoRandom });
        checkResult(await ctx.replica.execute({ type: "ext", name: "join_token.create", payload: record }), "creating a join token");
        ctx.auditDetail.tokenId = record.id;
        ctx.auditDetail.expiresAtMs = record.expiresAtMs;
        return { token, expiresAtMs: BigInt(record.expiresAtMs), caFingerprint: certFingerprint(cluster.caCertPem) };
      },
      async removeNode(req, ctx) {
        await removeNode(req.name, ctx);
        return {};
      },
      join: (req, ctx) => join(node, req, ctx),
    },
  });
}
