// How API values read in the UI: roles, health, durations and times.
import type { NodeHealth, NodeRole, Role } from "../api/types.ts";

export const roleLabel: Record<Role, string> = {
  ROLE_UNSPECIFIED: "None",
  ROLE_ADMINISTRATOR: "Administrator",
  ROLE_OPERATOR: "Operator",
  ROLE_AUDITOR: "Auditor",
};

export const nodeRoleLabel: Record<NodeRole, string> = {
  NODE_ROLE_UNSPECIFIED: "Unknown",
  NODE_ROLE_VOTER: "Voter",
  NODE_ROLE_LEARNER: "Learner",
};

export const healthLabel: Record<NodeHealth, string> = {
  NODE_HEALTH_UNSPECIFIED: "Unknown",
  NODE_HEALTH_HEALTHY: "Up",
  NODE_HEALTH_DEGRADED: "Degraded",
  NODE_HEALTH_UNREACHABLE: "Down",
};

/** "0.4 s", "12 s", "3 min", "2 h 5 min"; negative means unknown. */
export function formatDurationMs(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "unknown";
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 120) return `${min} min`;
  return `${Math.floor(min / 60)} h ${min % 60} min`;
}

/** An epoch-ms timestamp as local date and time (ISO-like, sortable); 0 means never. */
export function formatTime(atMs: number): string {
  if (!atMs) return "never";
  const d = new Date(atMs);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
