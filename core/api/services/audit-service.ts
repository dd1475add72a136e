// AuditService: the audit log, newest first, paged by id and filtered (Administrators,
// Operators and Auditors may read it).
import { defineService, type RegisteredService } from "../server/service.ts";
import { check, intBetween, lengthBetween, usernameRule } from "../server/validation.ts";
import { AuditService } from "../gen/trivet/v1/audit_pb.ts";
import { listAudit } from "../auth/auth-store.ts";
import { permissions } from "../auth/rbac.ts";
import { auditMessage } from "./convert.ts";

export const auditPageSizeDefault = 100;
export const auditPageSizeMax = 1000;

const nonNegative = (v: bigint) => (v >= 0n ? undefined : `must be ≥ 0 (got ${v})`);

export function auditService(): RegisteredService {
  return defineService({
    descriptor: AuditService,
    policy: { listAuditEntries: { permission: permissions.auditRead, mutation: false } },
    validate: {
      listAuditEntries: (r) => {
        check("page_size", r.pageSize, intBetween(0, auditPageSizeMax));
        check("before_id", r.beforeId, nonNegative);
        check("since_ms", r.sinceMs, nonNegative);
        check("until_ms", r.untilMs, nonNegative);
        if (r.principal && r.principal !== "-") check("principal", r.principal, usernameRule);
        check("action_prefix", r.actionPrefix, lengthBetween(0, 128));
        check("object", r.object, lengthBetween(0, 256));
      },
    },
    handlers: {
      async listAuditEntries(req, ctx) {
        const limit = req.pageSize || auditPageSizeDefault;
        const rows = ctx.replica.stateMachine.read((db) => listAudit(db, {
          limit, beforeId: Number(req.beforeId), principal: req.principal, actionPrefix: req.actionPrefix,
          object: req.object, sinceMs: Number(req.sinceMs), untilMs: Number(req.untilMs),
        })).value;
        const last = rows.at(-1);
        return { entries: rows.map(auditMessage), nextBeforeId: rows.length === limit && last ? BigInt(last.id) : 0n };
      },
    },
  });
}
