// Node health as a colored label.
import { Label } from "@patternfly/react-core";
import type { NodeHealth } from "../api/types.ts";
import { healthLabel } from "./format.ts";

const colorOf: Record<NodeHealth, "green" | "orange" | "red" | "grey"> = {
  NODE_HEALTH_UNSPECIFIED: "grey",
  NODE_HEALTH_HEALTHY: "green",
  NODE_HEALTH_DEGRADED: "orange",
  NODE_HEALTH_UNREACHABLE: "red",
};

export function HealthLabel({ health }: { health: NodeHealth }) {
  return <Label color={colorOf[health]} data-health={health}>{healthLabel[health]}</Label>;
}
