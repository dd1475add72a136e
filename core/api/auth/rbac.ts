// Role-based access control. A permission is "<area>.<verb>" with verb read, operate or manage
// (plus "self": anything any signed-in user may do about themselves). Roles:
//   Administrator — everything;
//   Operator      — reads everything; operates and manages VMs, networks and nodes, operates
//                   storage; no users, grants, others' tokens, cluster membership, nor
//                   creating or deleting volumes and images (storage.manage);
//   Auditor       — reads everything (the audit log included), changes nothing.
// A per-object grant (user X is Operator on vm/web1; "*" for every object of a kind) widens a
// user's role for that object only.
import { ApiError } from "../server/errors.ts";
import type { ObjectGrant, Principal, RoleName } from "../server/service.ts";

/** Areas an Operator may change. */
export const operatorAreas: ReadonlySet<string> = new Set(["vm", "storage", "volume", "image", "network", "node", "task"]);

/** Permissions in an Operator's areas that only an Administrator holds: volumes and images hold every VM's data. */
export const administratorOnlyPermissions: ReadonlySet<string> = new Set(["storage.manage"]);

export const roleTitles: Record<RoleName, string> = { administrator: "Administrator", operator: "Operator", auditor: "Auditor" };

/** Permissions named by the services of this issue (later areas add theirs with the same scheme). */
export const permissions = {
  self: "self",
  usersRead: "users.read",
  usersManage: "users.manage",
  tokensManage: "tokens.manage",
  auditRead: "audit.read",
  eventsRead: "events.read",
  clusterRead: "cluster.read",
  clusterManage: "cluster.manage",
} as const;

export function roleAllows(role: RoleName, permission: string): boolean {
  if (permission === permissions.self || role === "administrator") return true;
  const dot = permission.lastIndexOf(".");
  const area = permission.slice(0, dot);
  const verb = permission.slice(dot + 1);
  if (verb === "read") return true;
  return role === "operator" && operatorAreas.has(area) && !administratorOnlyPermissions.has(permission);
}

function grantCovers(g: ObjectGrant, object: string): boolean {
  const slash = object.indexOf("/");
  if (slash < 0) return false;
  return g.objectKind === object.slice(0, slash) && (g.objectId === "*" || g.objectId === object.slice(slash + 1));
}

export function allowed(principal: Principal, permission: string, object?: string): boolean {
  if (roleAllows(principal.role, permission)) return true;
  if (object === undefined) return false;
  return principal.grants.some((g) => grantCovers(g, object) && roleAllows(g.role, permission));
}

/** Throws permission_denied naming the permission (and the object) the caller lacks. */
export function authorize(principal: Principal, permission: string, object?: string): void {
  if (allowed(principal, permission, object)) return;
  const on = object ? ` on ${object}` : "";
  throw new ApiError("permission_denied", `user "${principal.username}" (${roleTitles[principal.role]}) lacks permission "${permission}"${on}`, { reason: permission });
}
