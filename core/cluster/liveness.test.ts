import { describe, expect, it } from "vitest";
import { nodeHealth } from "./liveness.ts";

describe("nodeHealth", () => {
  it("is up within three intervals of the last heartbeat, down after, unknown without one", () => {
    expect(nodeHealth(10_000, 15_000, 2000)).toBe("up");
    expect(nodeHealth(10_000, 16_000, 2000)).toBe("up");
    expect(nodeHealth(10_000, 16_001, 2000)).toBe("down");
    expect(nodeHealth(null, 16_001, 2000)).toBe("unknown");
  });
});
