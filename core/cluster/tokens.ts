// Join tokens: single-use, expiring invitations for a new node. The token text carries what the
// joiner needs and cannot otherwise trust: the CA fingerprint (to authenticate the cluster), the
// token id and secret (to authenticate itself) and member gRPC addresses (where to knock).
//   trivet1.<base64url(JSON {v:1, ca, id, s, a, exp})>
// The replicated state keeps only a record with the SHA-256 of the secret, never the secret.
// Pure: clock and randomness come from the caller.
import { createHash, timingSafeEqual } from "node:crypto";
import { ClusterError } from "./errors.ts";
import type { RandomBytes } from "./pki.ts";

export const tokenPrefix = "trivet1.";
export const tokenVersion = 1;
export const joinTokenTtlMsDefault = 60 * 60 * 1000;
export const joinTokenTtlMsMax = 7 * 24 * 60 * 60 * 1000;
export const tokenAddressesMax = 16;
export const tokenAddressMaxChars = 255;
/** Bound on the token text read from a user, well above a token with tokenAddressesMax addresses. */
export const tokenCharsMax = 8192;
export const tokenIdBytes = 8;
export const tokenSecretBytes = 32;

const tokenIdPattern = /^[0-9a-f]{16}$/;
const secretPattern = /^[A-Za-z0-9_-]{43}$/;
const sha256HexPattern = /^[0-9a-f]{64}$/;

/** What the replicated state stores about a token (join_tokens). */
export interface JoinTokenRecord {
  id: string;
  /** SHA-256 (hex) of the secret's base64url text. */
  secretHash: string;
  expiresAtMs: number;
  createdAtMs: number;
  usedAtMs?: number | null;
}

export interface JoinToken {
  caFingerprint: string;
  id: string;
  /** base64url of tokenSecretBytes random bytes. */
  secret: string;
  /** Member gRPC addresses, "host:port". */
  addresses: string[];
  expiresAtMs: number;
}

function fail(reason: string): never {
  throw new ClusterError("token_format", `join token: ${reason}`);
}

/** A SHA-256 fingerprint as 64 lower-case hex digits, from either that form or openssl's "AB:CD:…". */
export function normalizeFingerprint(text: string): string | null {
  const hex = typeof text === "string" ? text.replace(/:/g, "").toLowerCase() : "";
  return sha256HexPattern.test(hex) ? hex : null;
}

export function hashJoinSecret(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

/** A "host:port" address as tokens carry it (IPv6 hosts in brackets). */
export function isHostPort(a: unknown): a is string {
  if (typeof a !== "string" || a.length === 0 || a.length > tokenAddressMaxChars) return false;
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(a);
  const port = Number(m?.[2]);
  return m !== null && port >= 1 && port <= 65535;
}

function checkAddresses(addresses: unknown): string[] {
  if (!Array.isArray(addresses) || addresses.length === 0 || addresses.length > tokenAddressesMax) {
    fail(`"a" must list 1 to ${tokenAddressesMax} member addresses`);
  }
  for (const a of addresses) if (!isHostPort(a)) fail(`member address ${JSON.stringify(a)} is not "host:port"`);
  return addresses as string[];
}

export interface CreateJoinTokenOptions {
  caFingerprint: string;
  addresses: readonly string[];
  ttlMs?: number;
  nowMs: number;
  random: RandomBytes;
}

/** A new token (to show once to the operator) and the record to propose with join_token.create. */
export function createJoinToken(o: CreateJoinTokenOptions): { token: string; record: JoinTokenRecord } {
  const ttlMs = o.ttlMs ?? joinTokenTtlMsDefault;
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 1000 || ttlMs > joinTokenTtlMsMax) {
    throw new ClusterError("invalid_argument", `creating a join token: ttl must be from 1 s to ${joinTokenTtlMsMax / 3_600_000} h (joinTokenTtlMsMax), got ${ttlMs} ms`);
  }
  const ca = normalizeFingerprint(o.caFingerprint);
  if (ca === null) throw new ClusterError("invalid_argument", "creating a join token: the CA fingerprint must be 64 hex digits (SHA-256)");
  const addresses = checkAddresses([...o.addresses]);
  const id = Buffer.from(o.random(tokenIdBytes)).toString("hex");
  const secret = Buffer.from(o.random(tokenSecretBytes)).toString("base64url");
  const expiresAtMs = o.nowMs + ttlMs;
  const body = { v: tokenVersion, ca, id, s: secret, a: addresses, exp: expiresAtMs };
  const token = tokenPrefix + Buffer.from(JSON.stringify(body)).toString("base64url");
  return { token, record: { id, secretHash: hashJoinSecret(secret), expiresAtMs, createdAtMs: o.nowMs } };
}

/** Parses and checks a token; with `nowMs`, also refuses an expired one. */
export function parseJoinToken(text: string, nowMs?: number): JoinToken {
  if (typeof text !== "string" || !text.trim().startsWith(tokenPrefix)) fail(`not a Trivet token (expected prefix ${tokenPrefix})`);
  const t = text.trim();
  if (t.length > tokenCharsMax) fail(`${t.length} characters is over the limit of ${tokenCharsMax} (tokenCharsMax)`);
  const b64 = t.slice(tokenPrefix.length);
  let body: Record<string, unknown>;
  try {
    if (!/^[A-Za-z0-9_-]+$/.test(b64)) throw new Error("not base64url");
    const parsed: unknown = JSON.parse(Buffer.from(b64, "base64url").toString("utf8"));
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("not a JSON object");
    body = parsed as Record<string, unknown>;
  } catch {
    fail(`damaged: the text after ${tokenPrefix} is not base64url JSON; copy the whole token`);
  }
  if (body.v !== tokenVersion) fail(`version ${JSON.stringify(body.v)} is not supported by this build (expected ${tokenVersion})`);
  if (typeof body.ca !== "string" || !sha256HexPattern.test(body.ca)) fail(`"ca" must be a SHA-256 fingerprint (64 lower-case hex digits)`);
  if (typeof body.id !== "string" || !tokenIdPattern.test(body.id)) fail(`"id" must be ${tokenIdBytes * 2} hex digits`);
  if (typeof body.s !== "string" || !secretPattern.test(body.s)) fail(`"s" must be a ${tokenSecretBytes}-byte base64url secret`);
  if (typeof body.exp !== "number" || !Number.isSafeInteger(body.exp) || body.exp < 0) fail(`"exp" must be a time in ms`);
  const token: JoinToken = { caFingerprint: body.ca, id: body.id, secret: body.s, addresses: checkAddresses(body.a), expiresAtMs: body.exp };
  if (nowMs !== undefined && nowMs >= token.expiresAtMs) {
    throw new ClusterError("token_expired", `join token: expired at ${new Date(token.expiresAtMs).toISOString()}; create a new one with "trivet cluster token create"`);
  }
  return token;
}

/**
 * Checks a presented secret against the stored record (constant-time over the hashes), then
 * that the token is unused and unexpired. The secret is checked first so that someone without
 * it learns nothing about the token's state.
 */
export function verifyJoinSecret(record: JoinTokenRecord, secret: string, nowMs: number): void {
  const stored = Buffer.from(sha256HexPattern.test(record.secretHash) ? record.secretHash : "00".repeat(32), "hex");
  const presented = Buffer.from(hashJoinSecret(typeof secret === "string" ? secret : ""), "hex");
  if (!timingSafeEqual(stored, presented) || !sha256HexPattern.test(record.secretHash)) {
    throw new ClusterError("token_secret_mismatch", `join token ${record.id}: the secret does not match; check that the token was copied whole`);
  }
  if (record.usedAtMs !== undefined && record.usedAtMs !== null) {
    throw new ClusterError("token_used", `join token ${record.id}: already used at ${new Date(record.usedAtMs).toISOString()}; tokens are single-use, create a new one`);
  }
  if (nowMs >= record.expiresAtMs) {
    throw new ClusterError("token_expired", `join token ${record.id}: expired at ${new Date(record.expiresAtMs).toISOString()}; create a new one`);
  }
}
