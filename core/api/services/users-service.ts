// UserService: users (Administrator manages, everyone signed in reads) and per-object grants.
// Passwords are hashed here, on the receiving node, before the command is proposed.
import { ApiError, checkResult } from "../server/errors.ts";
import { defineService, type RegisteredService } from "../server/service.ts";
import { check, lengthBetween, noFields, objectIdRule, objectKindRule, oneOf, usernameRule } from "../server/validation.ts";
import { Role, UserService, type SetGrantRequest, type UpdateUserRequest } from "../gen/trivet/v1/users_pb.ts";
import { listGrants, listUsers, userByName } from "../auth/auth-store.ts";
import { newUserId, type RandomBytes } from "../auth/credentials.ts";
import { defaultArgon2Params, hashPassword, passwordMaxChars, passwordMinChars, type Argon2Params } from "../auth/passwords.ts";
import { permissions } from "../auth/rbac.ts";
import type { Replica } from "../../state/replica.ts";
import { grantMessage, roleName, roleNames, userMessage } from "./convert.ts";

export interface UserServiceOptions {
  argon2?: Argon2Params;
  randomBytes?: RandomBytes;
}

const passwordRule = lengthBetween(passwordMinChars, passwordMaxChars);
const roleRule = oneOf(roleNames, "role");

function readUser(replica: Replica, username: string) {
  const u = replica.stateMachine.read((db) => userByName(db, username)).value;
  if (!u) throw new ApiError("not_found", `user "${username}" does not exist`, { field: "username" });
  return u;
}

function validateUpdate(r: UpdateUserRequest): void {
  check("username", r.username, usernameRule);
  if (r.role !== undefined) check("role", r.role, roleRule);
  if (r.password !== undefined) check("password", r.password, passwordRule);
  if (r.role === undefined && r.password === undefined && r.disabled === undefined) {
    throw new ApiError("invalid_argument", "nothing to change: give role, password or disabled", { reason: "empty_update" });
  }
}

function validateGrant(r: SetGrantRequest): void {
  if (!r.grant) throw new ApiError("invalid_argument", `field "grant": is required`, { field: "grant", reason: "invalid_field" });
  check("grant.username", r.grant.username, usernameRule);
  check("grant.object_kind", r.grant.objectKind, objectKindRule);
  check("grant.object_id", r.grant.objectId, objectIdRule);
  if (r.grant.role !== Role.UNSPECIFIED) check("grant.role", r.grant.role, roleRule);
}

export function userService(opts: UserServiceOptions = {}): RegisteredService {
  const hash = (password: string) => hashPassword(password, opts.argon2 ?? defaultArgon2Params, opts.randomBytes);
  const userObject = (r: { username: string }) => `user/${r.username}`;
  return defineService({
    descriptor: UserService,
    policy: {
      createUser: { permission: permissions.usersManage, mutation: true, object: userObject },
      listUsers: { permission: permissions.usersRead, mutation: false },
      getUser: { permission: permissions.usersRead, mutation: false, object: userObject },
      updateUser: { permission: permissions.usersManage, mutation: true, object: userObject },
      deleteUser: { permission: permissions.usersManage, mutation: true, object: userObject },
      setGrant: { permission: permissions.usersManage, mutation: true, object: (r) => (r.grant ? `user/${r.grant.username}` : undefined) },
      listGrants: { permission: permissions.usersRead, mutation: false },
    },
    validate: {
      createUser: (r) => {
        check("username", r.username, usernameRule);
        check("password", r.password, passwordRule);
        check("role", r.role, roleRule);
      },
      listUsers: noFields,
      getUser: (r) => check("username", r.username, usernameRule),
      updateUser: validateUpdate,
      deleteUser: (r) => check("username", r.username, usernameRule),
      setGrant: validateGrant,
      listGrants: (r) => {
        if (r.username) check("username", r.username, usernameRule);
        if (r.objectKind) check("object_kind", r.objectKind, objectKindRule);
        if (r.objectId) check("object_id", r.objectId, objectIdRule);
      },
    },
    handlers: {
      async createUser(req, ctx) {
        const payload = { id: newUserId(opts.randomBytes), username: req.username, role: roleName(req.role), passwordHash: await hash(req.password) };
        checkResult(await ctx.replica.execute({ type: "ext", name: "user.create", payload }), `creating user "${req.username}"`);
        ctx.auditDetail.role = payload.role;
        return { user: userMessage(readUser(ctx.replica, req.username)) };
      },
      async listUsers(_req, ctx) {
        return { users: ctx.replica.stateMachine.read(listUsers).value.map(userMessage) };
      },
      async getUser(req, ctx) {
        return { user: userMessage(readUser(ctx.replica, req.username)) };
      },
      async updateUser(req, ctx) {
        const payload = {
          username: req.username,
          role: req.role === undefined ? undefined : roleName(req.role),
          passwordHash: req.password === undefined ? undefined : await hash(req.password),
          disabled: req.disabled,
        };
        checkResult(await ctx.replica.execute({ type: "ext", name: "user.update", payload }), `updating user "${req.username}"`);
        Object.assign(ctx.auditDetail, { role: payload.role, disabled: payload.disabled, passwordChanged: req.password !== undefined });
        return { user: userMessage(readUser(ctx.replica, req.username)) };
      },
      async deleteUser(req, ctx) {
        checkResult(await ctx.replica.execute({ type: "ext", name: "user.delete", payload: { username: req.username } }), `deleting user "${req.username}"`);
        return {};
      },
      async setGrant(req, ctx) {
        const g = req.grant!;
        const key = { username: g.username, objectKind: g.objectKind, objectId: g.objectId };
        const cmd = g.role === Role.UNSPECIFIED
          ? { type: "ext" as const, name: "grant.remove", payload: key }
          : { type: "ext" as const, name: "grant.set", payload: { ...key, role: roleName(g.role) } };
        checkResult(await ctx.replica.execute(cmd), `setting the grant of "${g.username}" on ${g.objectKind}/${g.objectId}`);
        Object.assign(ctx.auditDetail, { grant: `${g.objectKind}/${g.objectId}`, role: g.role === Role.UNSPECIFIED ? "none" : roleName(g.role) });
        return { grant: g };
      },
      async listGrants(req, ctx) {
        const rows = ctx.replica.stateMachine.read((db) => listGrants(db, { username: req.username, objectKind: req.objectKind, objectId: req.objectId })).value;
        return { grants: rows.map(grantMessage) };
      },
    },
  });
}
