// Writing the audit log: one audit.append command per audited request, through Raft like every
// other change, so every node holds the same log (id = Raft index of the entry).
import type { Replica } from "../../state/replica.ts";
import type { AuditRecord } from "../server/dispatch.ts";
import { checkResult } from "../server/errors.ts";
import { auditDetailMaxBytes } from "./auth-module.ts";

/** Detail JSON within the module's bound: an oversized detail is cut to a marker, never dropped with the entry. */
function detailJson(detail: Record<string, unknown>): string {
  const json = JSON.stringify(detail);
  return json.length <= auditDetailMaxBytes ? json : JSON.stringify({ truncated: true, bytes: json.length });
}

export async function appendAudit(replica: Replica, r: AuditRecord): Promise<void> {
  const payload = { principal: r.principal || "-", action: r.action, object: r.object || undefined, result: r.result, detailJson: detailJson(r.detail) };
  checkResult(await replica.execute({ type: "ext", name: "audit.append", payload }), `recording ${r.action} in the audit log`);
}
