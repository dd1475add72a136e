// State module of cluster membership as the API sees it: a node joins under a unique name and
// is given the next node id by the deterministic apply; its endpoints (public API, HTTPS,
// node-to-node) are recorded so any member can hand them to clients and joiners. Raft's own
// configuration (voters, learners) is changed separately through ConfChange entries.
import type Database from "better-sqlite3";
import type { CommandResult } from "../state/apply.ts";
import { CommandError } from "../state/errors.ts";
import { prepared, type ApplyContext, type CommandSpec, type StateModule } from "../state/modules.ts";
import { checkHostPort } from "./node-config.ts";

const nodeNamePattern = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export interface NodeJoinPayload {
  name: string;
  peerAddress: string;
  apiAddress: string;
  httpAddress: string;
  /** Set only for the founding node, whose id is fixed before the group exists. */
  nodeId?: number;
}

export interface NodeEndpoints {
  nodeId: number;
  name: string;
  role: string;
  peerAddress: string;
  apiAddress: string;
  httpAddress: string;
  heartbeatAtMs: number | null;
}

function payloadFields(cmd: string, p: unknown): Record<string, unknown> {
  if (p === null || typeof p !== "object" || Array.isArray(p)) throw new CommandError(cmd, "payload", "must be an object");
  return p as Record<string, unknown>;
}

function address(cmd: string, p: Record<string, unknown>, field: string): string {
  try {
    return checkHostPort(field, p[field]);
  } catch (err) {
    throw new CommandError(cmd, field, `must be host:port with a port from 1 to 65535 (got ${JSON.stringify(p[field])}): ${(err as Error).message}`);
  }
}

const join: CommandSpec<NodeJoinPayload> = {
  validate(payload) {
    const p = payloadFields("node.join", payload);
    if (typeof p.name !== "string" || !nodeNamePattern.test(p.name)) {
      throw new CommandError("node.join", "name", `must be a lower-case DNS label of 1 to 63 characters (got ${JSON.stringify(p.name)})`);
    }
    const nodeId = p.nodeId;
    if (nodeId !== undefined && (typeof nodeId !== "number" || !Number.isSafeInteger(nodeId) || nodeId < 1)) {
      throw new CommandError("node.join", "nodeId", "must be a positive integer when given");
    }
    return { name: p.name, peerAddress: address("node.join", p, "peerAddress"), apiAddress: address("node.join", p, "apiAddress"), httpAddress: address("node.join", p, "httpAddress"), ...(nodeId !== undefined ? { nodeId: nodeId as number } : {}) };
  },
  apply(ctx: ApplyContext, p): CommandResult {
    const taken = ctx.prepare("SELECT id FROM nodes WHERE name = ?").pluck().get(p.name) as number | undefined;
    if (taken !== undefined) return { ok: false, code: "name_taken", field: "name", message: `a node named "${p.name}" is already a member (node ${taken}); remove it first or choose another name` };
    const next = ((ctx.prepare("SELECT max(id) FROM nodes").pluck().get() as number | null) ?? 0) + 1;
    const nodeId = p.nodeId ?? next;
    if (p.nodeId !== undefined && ctx.prepare("SELECT 1 FROM nodes WHERE id = ?").get(p.nodeId)) return { ok: false, code: "id_taken", field: "nodeId", message: `node id ${p.nodeId} is in use` };
    const role = nodeId === 1 && next === 1 ? "voter" : "learner";
    ctx.prepare("INSERT INTO nodes (id, name, address, role, added_index, heartbeat_at_ms) VALUES (?, ?, ?, ?, ?, NULL)").run(nodeId, p.name, p.peerAddress, role, ctx.index);
    ctx.prepare("INSERT INTO node_endpoints (node_id, api_address, http_address) VALUES (?, ?, ?)").run(nodeId, p.apiAddress, p.httpAddress);
    return { ok: true, nodeId };
  },
};

const setRole: CommandSpec<{ nodeId: number; role: "voter" | "learner" }> = {
  validate(payload) {
    const p = payloadFields("node.set_role", payload);
    if (typeof p.nodeId !== "number" || !Number.isSafeInteger(p.nodeId) || p.nodeId < 1) throw new CommandError("node.set_role", "nodeId", "must be a positive integer");
    if (p.role !== "voter" && p.role !== "learner") throw new CommandError("node.set_role", "role", 'must be "voter" or "learner"');
    return { nodeId: p.nodeId, role: p.role };
  },
  apply: (ctx, p) => ({ ok: true, changed: ctx.prepare("UPDATE nodes SET role = ? WHERE id = ?").run(p.role, p.nodeId).changes > 0 }),
};

const leave: CommandSpec<{ nodeId: number }> = {
  validate(payload) {
    const p = payloadFields("node.leave", payload);
    if (typeof p.nodeId !== "number" || !Number.isSafeInteger(p.nodeId) || p.nodeId < 1) throw new CommandError("node.leave", "nodeId", "must be a positive integer");
    return { nodeId: p.nodeId };
  },
  apply(ctx, p) {
    ctx.prepare("DELETE FROM node_endpoints WHERE node_id = ?").run(p.nodeId);
    return { ok: true, removed: ctx.prepare("DELETE FROM nodes WHERE id = ?").run(p.nodeId).changes > 0 };
  },
};

export const nodeModule: StateModule = {
  name: "nodes",
  migrations: [
    {
      version: 4,
      name: "node endpoints",
      sql: "CREATE TABLE node_endpoints (node_id INTEGER PRIMARY KEY, api_address TEXT NOT NULL, http_address TEXT NOT NULL);",
    },
  ],
  commands: { "node.join": join, "node.set_role": setRole, "node.leave": leave },
};

export function listNodeEndpoints(db: Database.Database): NodeEndpoints[] {
  return prepared(db, `SELECT n.id AS nodeId, n.name, n.role, n.address AS peerAddress, e.api_address AS apiAddress,
    e.http_address AS httpAddress, n.heartbeat_at_ms AS heartbeatAtMs FROM nodes n JOIN node_endpoints e ON e.node_id = n.id ORDER BY n.id`).all() as NodeEndpoints[];
}
