// Join tokens: the text format, precise refusals, expiry and single use of the secret check.
import { describe, expect, it } from "vitest";
import { ClusterError } from "./errors.ts";
import { createJoinToken, hashJoinSecret, normalizeFingerprint, parseJoinToken, tokenPrefix, verifyJoinSecret } from "./tokens.ts";

const ca = "ab".repeat(32);
const nowMs = 1_800_000_000_000;
/** Deterministic randomness: a counter, so two calls give different bytes. */
function counterRandom(): (n: number) => Uint8Array {
  let k = 0;
  return (n) => Uint8Array.from({ length: n }, () => k++ & 0xff);
}

function errorOf(fn: () => unknown): ClusterError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ClusterError);
    return err as ClusterError;
  }
  throw new Error("expected an error");
}

const encode = (body: unknown) => tokenPrefix + Buffer.from(JSON.stringify(body)).toString("base64url");

describe("join tokens", () => {
  it("round trip: what create encodes, parse returns; the record holds only the secret's hash", () => {
    const { token, record } = createJoinToken({ caFingerprint: ca.toUpperCase().match(/../g)!.join(":"), addresses: ["10.0.0.1:7443", "[::1]:7443"], ttlMs: 60_000, nowMs, random: counterRandom() });
    expect(token.startsWith("trivet1.")).toBe(true);
    const t = parseJoinToken(`  ${token}\n`, nowMs);
    expect(t).toEqual({ caFingerprint: ca, id: "0001020304050607", secret: Buffer.from(Uint8Array.from({ length: 32 }, (_, i) => i + 8)).toString("base64url"), addresses: ["10.0.0.1:7443", "[::1]:7443"], expiresAtMs: nowMs + 60_000 });
    expect(record).toEqual({ id: t.id, secretHash: hashJoinSecret(t.secret), expiresAtMs: nowMs + 60_000, createdAtMs: nowMs });
    expect(JSON.stringify(record)).not.toContain(t.secret);
  });

  it("refuses what is not a token, with the reason", () => {
    expect(errorOf(() => parseJoinToken("hello")).message).toBe("join token: not a Trivet token (expected prefix trivet1.)");
    expect(errorOf(() => parseJoinToken("trivet1.@@@")).message).toContain("damaged");
    expect(errorOf(() => parseJoinToken("trivet1." + Buffer.from("[1]").toString("base64url"))).message).toContain("damaged");
    const good = { v: 1, ca, id: "00".repeat(8), s: "A".repeat(43), a: ["h:1"], exp: nowMs };
    expect(errorOf(() => parseJoinToken(encode({ ...good, v: 2 }))).message).toContain("version 2 is not supported");
    expect(errorOf(() => parseJoinToken(encode({ ...good, ca: "xyz" }))).message).toContain('"ca" must be a SHA-256 fingerprint');
    expect(errorOf(() => parseJoinToken(encode({ ...good, s: "short" }))).message).toContain('"s"');
    expect(errorOf(() => parseJoinToken(encode({ ...good, a: ["no-port"] }))).message).toContain('"no-port" is not "host:port"');
    expect(errorOf(() => parseJoinToken(encode({ ...good, a: [] }))).code).toBe("token_format");
    expect(parseJoinToken(encode(good)).id).toBe("00".repeat(8));
  });

  it("is expired at and after its expiry time", () => {
    const { token } = createJoinToken({ caFingerprint: ca, addresses: ["h:7443"], ttlMs: 1000, nowMs, random: counterRandom() });
    expect(parseJoinToken(token, nowMs + 999).expiresAtMs).toBe(nowMs + 1000);
    const e = errorOf(() => parseJoinToken(token, nowMs + 1000));
    expect(e.code).toBe("token_expired");
    expect(e.message).toContain(`expired at ${new Date(nowMs + 1000).toISOString()}`);
  });

  it("refuses a TTL out of bounds and a bad CA fingerprint when creating", () => {
    const base = { caFingerprint: ca, addresses: ["h:7443"], nowMs, random: counterRandom() };
    expect(errorOf(() => createJoinToken({ ...base, ttlMs: 8 * 86_400_000 })).code).toBe("invalid_argument");
    expect(errorOf(() => createJoinToken({ ...base, caFingerprint: "ab" })).code).toBe("invalid_argument");
    expect(normalizeFingerprint("AB:".repeat(31) + "AB")).toBe(ca);
  });

  it("verifyJoinSecret: right secret passes; wrong secret, used and expired are refused", () => {
    const { token, record } = createJoinToken({ caFingerprint: ca, addresses: ["h:7443"], ttlMs: 60_000, nowMs, random: counterRandom() });
    const { secret } = parseJoinToken(token);
    expect(() => verifyJoinSecret(record, secret, nowMs)).not.toThrow();
    expect(errorOf(() => verifyJoinSecret(record, secret.replace(/^./, (c) => (c === "A" ? "B" : "A")), nowMs)).code).toBe("token_secret_mismatch");
    expect(errorOf(() => verifyJoinSecret({ ...record, usedAtMs: nowMs }, secret, nowMs)).code).toBe("token_used");
    expect(errorOf(() => verifyJoinSecret(record, secret, nowMs + 60_000)).code).toBe("token_expired");
    // A wrong secret is refused before the state is revealed.
    expect(errorOf(() => verifyJoinSecret({ ...record, usedAtMs: nowMs }, "x", nowMs)).code).toBe("token_secret_mismatch");
  });
});
