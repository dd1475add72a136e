// Conversions between the rows of the auth tables and the messages of the API (roles are names
// in the replicated state, enum values on the wire; int64 times and ids are bigint in messages).
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { AuditEntrySchema } from "../gen/trivet/v1/audit_pb.ts";
import type { ApiTokenSchema } from "../gen/trivet/v1/auth_pb.ts";
import { Role, type GrantSchema, type UserSchema } from "../gen/trivet/v1/users_pb.ts";
import type { AuditRow, GrantRow, TokenRow, UserRow } from "../auth/auth-store.ts";
import type { RoleName } from "../server/service.ts";

export const roleOfName: Record<RoleName, Role> = { administrator: Role.ADMINISTRATOR, operator: Role.OPERATOR, auditor: Role.AUDITOR };
export const roleNames: ReadonlyMap<Role, string> = new Map([[Role.ADMINISTRATOR, "ROLE_ADMINISTRATOR"], [Role.OPERATOR, "ROLE_OPERATOR"], [Role.AUDITOR, "ROLE_AUDITOR"]]);

export function roleName(r: Role): RoleName {
  const name = (Object.keys(roleOfName) as RoleName[]).find((n) => roleOfName[n] === r);
  if (!name) throw new Error(`role ${r} has no name (validate the request first)`);
  return name;
}

export function userMessage(u: UserRow): MessageInitShape<typeof UserSchema> {
  return { id: u.id, username: u.username, role: roleOfName[u.role], disabled: u.disabled, createdAtMs: BigInt(u.createdAtMs), updatedAtMs: BigInt(u.updatedAtMs) };
}

export function tokenMessage(t: TokenRow): MessageInitShape<typeof ApiTokenSchema> {
  return { id: t.id, name: t.name, username: t.username, createdAtMs: BigInt(t.createdAtMs), expiresAtMs: BigInt(t.expiresAtMs), revokedAtMs: BigInt(t.revokedAtMs) };
}

export function grantMessage(g: GrantRow): MessageInitShape<typeof GrantSchema> {
  return { username: g.username, objectKind: g.objectKind, objectId: g.objectId, role: roleOfName[g.role] };
}

export function auditMessage(a: AuditRow): MessageInitShape<typeof AuditEntrySchema> {
  return { id: BigInt(a.id), atMs: BigInt(a.atMs), principal: a.principal, action: a.action, object: a.object, result: a.result, detailJson: a.detail };
}
