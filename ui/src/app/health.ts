// The counts the dashboard shows: nodes up and down, and quorum.
import type { ClusterNode } from "../api/types.ts";

/** Up: heartbeating (late counts as up); down: no heartbeat within the lease. */
export function healthCounts(nodes: readonly ClusterNode[]): { up: number; down: number } {
  const down = nodes.filter((n) => n.health === "NODE_HEALTH_UNREACHABLE").length;
  return { up: nodes.length - down, down };
}

/** Whether the voters that are up form a majority of all voters (writes can be committed). */
export function hasQuorum(nodes: readonly ClusterNode[]): { quorum: boolean; votersUp: number; voters: number } {
  const voters = nodes.filter((n) => n.role === "NODE_ROLE_VOTER");
  const votersUp = voters.filter((n) => n.health !== "NODE_HEALTH_UNREACHABLE").length;
  return { quorum: votersUp * 2 > voters.length, votersUp, voters: voters.length };
}
