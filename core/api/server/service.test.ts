// defineService: a method cannot be served without its handler, access policy and validator.
import { describe, expect, it } from "vitest";
import { AuditService } from "../gen/trivet/v1/audit_pb.ts";
import { EventService } from "../gen/trivet/v1/events_pb.ts";
import { defineService, type ServiceDefinition } from "./service.ts";

const complete = {
  descriptor: AuditService,
  handlers: { listAuditEntries: async () => ({}) },
  policy: { listAuditEntries: { permission: "audit.read", mutation: false } },
  validate: { listAuditEntries: () => {} },
};

describe("defineService", () => {
  it("registers unary and streaming methods under their proto names", () => {
    const s = defineService(complete);
    expect([...s.methods.keys()]).toEqual(["ListAuditEntries"]);
    expect(s.methods.get("ListAuditEntries")).toMatchObject({ action: "AuditService.ListAuditEntries", policy: { permission: "audit.read" } });
    const e = defineService({ descriptor: EventService, handlers: { async *watch() {} }, policy: { watch: { permission: "events.read", mutation: false } }, validate: { watch: () => {} } });
    expect(e.methods.get("Watch")?.stream).toBeTypeOf("function");
  });

  it.each(["handlers", "policy", "validate"] as const)("refuses a service whose method lacks %s", (part) => {
    const broken = { ...complete, [part]: {} } as unknown as ServiceDefinition<never>;
    expect(() => defineService(broken)).toThrow(/defining AuditService.ListAuditEntries: no/);
  });
});
