// Roles and per-object grants: what each role may do, and how a grant widens a role for one
// object (or every object of a kind) and no further.
import { describe, expect, it } from "vitest";
import type { ObjectGrant, Principal, RoleName } from "../server/service.ts";
import { allowed, authorize } from "./rbac.ts";

const who = (role: RoleName, grants: ObjectGrant[] = []): Principal => ({ userId: "u_1", username: "pat", role, grants, credential: { kind: "token", id: "t" } });

describe("rbac", () => {
  it.each([
    ["administrator", "users.manage", true], ["administrator", "cluster.manage", true],
    ["operator", "vm.operate", true], ["operator", "storage.operate", true], ["operator", "storage.manage", false], ["operator", "node.operate", true],
    ["operator", "users.read", true], ["operator", "audit.read", true],
    ["operator", "users.manage", false], ["operator", "tokens.manage", false], ["operator", "cluster.manage", false],
    ["auditor", "audit.read", true], ["auditor", "vm.read", true], ["auditor", "self", true],
    ["auditor", "vm.operate", false], ["auditor", "users.manage", false],
  ] as const)("%s may %s: %s", (role, permission, expected) => {
    expect(allowed(who(role), permission)).toBe(expected);
  });

  it("widens a role only on the granted object", () => {
    const p = who("auditor", [{ objectKind: "vm", objectId: "web1", role: "operator" }]);
    expect(allowed(p, "vm.operate", "vm/web1")).toBe(true);
    expect(allowed(p, "vm.operate", "vm/web2")).toBe(false);
    expect(allowed(p, "vm.operate")).toBe(false);
    expect(allowed(p, "users.manage", "vm/web1")).toBe(false);
    const all = who("auditor", [{ objectKind: "vm", objectId: "*", role: "operator" }]);
    expect(allowed(all, "vm.operate", "vm/anything")).toBe(true);
    expect(allowed(all, "vm.operate", "volume/anything")).toBe(false);
  });

  it("names the permission, the role and the object when refusing", () => {
    expect(() => authorize(who("operator"), "users.manage", "user/bob")).toThrow('user "pat" (Operator) lacks permission "users.manage" on user/bob');
  });
});
