// Brute-force protection for Login: failures are counted per username and per remote address
// within a window; past the allowance each further failure locks the key for an exponentially
// growing time (capped). A locked key is refused before the password is even checked, with
// resource_exhausted and a retry-after.
//
// Kept in memory on each node, not in the replicated state: writing every failed login through
// Raft would let an attacker fill the log and slow every node. The cost is that an attacker
// spreading attempts over N nodes gets N times the allowance, and a node restart forgets —
// acceptable because each attempt also costs an argon2id verification (~0.1 s of CPU) and the
// allowance is small; a cluster-wide limit would need the leader to count (a later issue).
import { ApiError } from "../server/errors.ts";

export interface LoginThrottleOptions {
  /** Failures per username allowed within windowMs before lock-outs begin. */
  usernameFailuresAllowed: number;
  /** Failures per remote address (higher: several users may share a NAT). */
  addressFailuresAllowed: number;
  windowMs: number;
  /** First lock-out; doubles with each further failure. */
  lockoutBaseMs: number;
  lockoutMaxMs: number;
  /** Keys tracked at most; the least recently failed are forgotten first (bounded memory). */
  keysMax: number;
}

export const defaultLoginThrottle: LoginThrottleOptions = {
  usernameFailuresAllowed: 5,
  addressFailuresAllowed: 20,
  windowMs: 15 * 60_000,
  lockoutBaseMs: 1_000,
  lockoutMaxMs: 15 * 60_000,
  keysMax: 10_000,
};

interface KeyState {
  failures: number;
  windowStartMs: number;
  lockedUntilMs: number;
}

export class LoginThrottle {
  private readonly keys = new Map<string, KeyState>();
  readonly options: LoginThrottleOptions;

  constructor(options: Partial<LoginThrottleOptions> = {}) {
    this.options = { ...defaultLoginThrottle, ...options };
  }

  private keysOf(username: string, address: string): [string, number][] {
    return [[`user:${username}`, this.options.usernameFailuresAllowed], [`addr:${address}`, this.options.addressFailuresAllowed]];
  }

  /** Throws resource_exhausted while the username or the address is locked out. */
  check(username: string, address: string, nowMs: number): void {
    let untilMs = 0;
    for (const [k] of this.keysOf(username, address)) untilMs = Math.max(untilMs, this.keys.get(k)?.lockedUntilMs ?? 0);
    if (untilMs > nowMs) {
      const retryAfterMs = untilMs - nowMs;
      throw new ApiError("resource_exhausted", `too many failed logins for "${username}" or from this address; try again in ${Math.ceil(retryAfterMs / 1000)} s`, { reason: "login_throttled", retryAfterMs });
    }
  }

  failure(username: string, address: string, nowMs: number): void {
    for (const [k, allowed] of this.keysOf(username, address)) {
      const prev = this.keys.get(k);
      const s: KeyState = prev && nowMs - prev.windowStartMs < this.options.windowMs ? prev : { failures: 0, windowStartMs: nowMs, lockedUntilMs: 0 };
      s.failures += 1;
      if (s.failures >= allowed) {
        const lockMs = Math.min(this.options.lockoutMaxMs, this.options.lockoutBaseMs * 2 ** Math.min(30, s.failures - allowed));
        s.lockedUntilMs = nowMs + lockMs;
      }
      this.keys.delete(k);
      this.keys.set(k, s);
    }
    while (this.keys.size > this.options.keysMax) this.keys.delete(this.keys.keys().next().value!);
  }

  /** A successful login clears its username's count (not the address's: one valid account must not reset an address's failures). */
  success(username: string): void {
    this.keys.delete(`user:${username}`);
  }
}
