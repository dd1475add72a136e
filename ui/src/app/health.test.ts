// The dashboard's counts: nodes up and down, and whether the voters that are up are a majority.
import { describe, expect, it } from "vitest";
import type { ClusterNode, NodeHealth, NodeRole } from "../api/types.ts";
import { hasQuorum, healthCounts } from "./health.ts";

const node = (name: string, health: NodeHealth, role: NodeRole = "NODE_ROLE_VOTER"): ClusterNode => ({
  id: "1", name, address: "", role, leader: false, health, heartbeatAtMs: "0", lastContactMs: "-1", appliedIndex: "0",
});

describe("cluster health", () => {
  it("counts degraded nodes as up and unreachable ones as down", () => {
    expect(healthCounts([node("a", "NODE_HEALTH_HEALTHY"), node("b", "NODE_HEALTH_DEGRADED"), node("c", "NODE_HEALTH_UNREACHABLE")])).toEqual({ up: 2, down: 1 });
  });

  it("has quorum with 2 of 3 voters up but not 1 of 3; learners do not count", () => {
    expect(hasQuorum([node("a", "NODE_HEALTH_HEALTHY"), node("b", "NODE_HEALTH_HEALTHY"), node("c", "NODE_HEALTH_UNREACHABLE")])).toEqual({ quorum: true, votersUp: 2, voters: 3 });
    expect(hasQuorum([node("a", "NODE_HEALTH_HEALTHY"), node("b", "NODE_HEALTH_UNREACHABLE"), node("c", "NODE_HEALTH_UNREACHABLE"), node("d", "NODE_HEALTH_HEALTHY", "NODE_ROLE_LEARNER")]))
      .toEqual({ quorum: false, votersUp: 1, voters: 3 });
  });
});
