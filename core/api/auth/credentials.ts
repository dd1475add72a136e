// The secrets a login hands out and how they are kept: session ids, CSRF tokens and API tokens
// are random, shown to their owner once, and stored only as SHA-256 hashes (they are long
// random strings, so a fast hash suffices — unlike passwords, which get argon2id). API tokens
// read trv_<id>_<secret>: the id finds the row without revealing anything, the secret proves it.
import { createHash, randomBytes as nodeRandomBytes, timingSafeEqual } from "node:crypto";

export type RandomBytes = (n: number) => Uint8Array;

export const tokenPrefix = "trv_";
export const tokenIdBytes = 8;
export const secretBytes = 32;
const tokenPattern = /^trv_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

const b64url = (b: Uint8Array) => Buffer.from(b).toString("base64url");

export function sha256Hex(s: string): string {
  return createHash("sha256").update(s).digest("hex");
}

/** Compares two hex digests in constant time. */
export function sameDigest(a: string, b: string): boolean {
  const x = Buffer.from(a, "hex");
  const y = Buffer.from(b, "hex");
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

export interface NewApiToken {
  id: string;
  /** The whole token, trv_<id>_<secret>: given to the user once. */
  token: string;
  secretHash: string;
}

export function newApiToken(randomBytes: RandomBytes = nodeRandomBytes): NewApiToken {
  const id = Buffer.from(randomBytes(tokenIdBytes)).toString("hex");
  const secret = b64url(randomBytes(secretBytes));
  return { id, token: `${tokenPrefix}${id}_${secret}`, secretHash: sha256Hex(secret) };
}

export function parseApiToken(token: string): { id: string; secret: string } | undefined {
  const m = tokenPattern.exec(token);
  return m ? { id: m[1]!, secret: m[2]! } : undefined;
}

export interface NewSession {
  sessionId: string;
  csrfToken: string;
  idHash: string;
  csrfHash: string;
}

export function newSession(randomBytes: RandomBytes = nodeRandomBytes): NewSession {
  const sessionId = b64url(randomBytes(secretBytes));
  const csrfToken = b64url(randomBytes(secretBytes));
  return { sessionId, csrfToken, idHash: sha256Hex(sessionId), csrfHash: sha256Hex(csrfToken) };
}

export function newUserId(randomBytes: RandomBytes = nodeRandomBytes): string {
  return `u_${Buffer.from(randomBytes(8)).toString("hex")}`;
}
