// Login brute-force protection with an injected clock: allowance, exponential lock-out with a
// cap, the window, per-address counting, and the memory bound.
import { describe, expect, it } from "vitest";
import type { ApiError } from "../server/errors.ts";
import { LoginThrottle } from "./login-throttle.ts";

function refusal(fn: () => void): ApiError | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return err as ApiError;
  }
}

describe("LoginThrottle", () => {
  const opts = { usernameFailuresAllowed: 3, addressFailuresAllowed: 5, windowMs: 60_000, lockoutBaseMs: 1_000, lockoutMaxMs: 8_000, keysMax: 100 };

  it("locks a username after its allowance, doubling the lock-out up to the cap", () => {
    const t = new LoginThrottle(opts);
    let now = 0;
    for (let i = 0; i < 2; i++) t.failure("alice", `10.0.0.${i}`, now);
    expect(refusal(() => t.check("alice", "10.0.0.9", now))).toBeUndefined();
    const locks: number[] = [];
    for (let i = 0; i < 6; i++) {
      t.failure("alice", `10.0.1.${i}`, now);
      const e = refusal(() => t.check("alice", "10.0.0.9", now));
      expect(e).toMatchObject({ code: "resource_exhausted", reason: "login_throttled" });
      locks.push(e!.retryAfterMs!);
      now += e!.retryAfterMs!;
      expect(refusal(() => t.check("alice", "10.0.0.9", now))).toBeUndefined();
    }
    expect(locks).toEqual([1000, 2000, 4000, 8000, 8000, 8000]);
    expect(refusal(() => t.check("bob", "10.0.0.9", now))).toBeUndefined();
  });

  it("counts per address across usernames, and forgets failures outside the window", () => {
    const t = new LoginThrottle(opts);
    for (let i = 0; i < 4; i++) t.failure(`user${i}`, "192.0.2.1", 0);
    expect(refusal(() => t.check("fresh", "192.0.2.1", 0))).toBeUndefined();
    t.failure("user9", "192.0.2.1", 1);
    expect(refusal(() => t.check("fresh", "192.0.2.1", 2))).toMatchObject({ code: "resource_exhausted" });
    expect(refusal(() => t.check("fresh", "192.0.2.2", 2))).toBeUndefined();
    const u = new LoginThrottle(opts);
    u.failure("carol", "a", 0);
    u.failure("carol", "a", 1);
    u.failure("carol", "a", 70_000);
    expect(refusal(() => u.check("carol", "b", 70_000))).toBeUndefined();
  });

  it("clears a username's count on success but not its address's", () => {
    const t = new LoginThrottle(opts);
    for (let i = 0; i < 2; i++) t.failure("dave", "198.51.100.1", 0);
    t.success("dave");
    t.failure("dave", "198.51.100.1", 0);
    expect(refusal(() => t.check("dave", "198.51.100.2", 0))).toBeUndefined();
    t.failure("erin", "198.51.100.1", 0);
    t.failure("erin", "198.51.100.1", 0);
    expect(refusal(() => t.check("zed", "198.51.100.1", 0))).toMatchObject({ code: "resource_exhausted" });
  });

  it("keeps at most keysMax keys", () => {
    const t = new LoginThrottle({ ...opts, keysMax: 10 });
    for (let i = 0; i < 100; i++) t.failure(`u${i}`, `a${i}`, 0);
    expect((t as unknown as { keys: Map<string, unknown> }).keys.size).toBe(10);
  });
});
