// Password hashing: argon2id (RFC 9106) through hash-wasm, pure WebAssembly, so it bundles into
// the single executable without a native addon. Hashes are PHC strings
// ($argon2id$v=19$m=…,t=…,p=…$salt$hash) so the parameters travel with each hash and can be
// raised later without invalidating old ones. Hashing happens on the node that receives the
// password, before anything is proposed: only the hash reaches the Raft log, never the password.
import { argon2id } from "hash-wasm";
import { randomBytes as nodeRandomBytes, timingSafeEqual } from "node:crypto";

export interface Argon2Params {
  memoryKiB: number;
  iterations: number;
  parallelism: number;
  hashBytes: number;
  saltBytes: number;
}

/** OWASP's recommended minimum for argon2id (Password Storage Cheat Sheet): 19 MiB, 2 passes, 1 lane. */
export const defaultArgon2Params: Argon2Params = { memoryKiB: 19 * 1024, iterations: 2, parallelism: 1, hashBytes: 32, saltBytes: 16 };

/** Stored hashes asking for more than this are refused rather than computed (a corrupt or hostile row must not exhaust memory). */
export const verifyMemoryMaxKiB = 256 * 1024;
export const verifyIterationsMax = 16;
export const passwordMinChars = 12;
export const passwordMaxChars = 256;

export class PasswordHashError extends Error {
  readonly code = "password_hash_invalid";
  constructor(message: string) {
    super(message);
    this.name = "PasswordHashError";
  }
}

const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64").replace(/=+$/, "");
const unb64 = (s: string) => new Uint8Array(Buffer.from(s, "base64"));

async function raw(password: string, salt: Uint8Array, p: Omit<Argon2Params, "saltBytes">): Promise<Uint8Array> {
  return argon2id({ password, salt, parallelism: p.parallelism, iterations: p.iterations, memorySize: p.memoryKiB, hashLength: p.hashBytes, outputType: "binary" });
}

/** Hashes a password into a PHC string; `randomBytes` is injectable for deterministic tests. */
export async function hashPassword(password: string, params: Argon2Params = defaultArgon2Params, randomBytes: (n: number) => Uint8Array = nodeRandomBytes): Promise<string> {
  const salt = randomBytes(params.saltBytes);
  const hash = await raw(password, salt, params);
  return `$argon2id$v=19$m=${params.memoryKiB},t=${params.iterations},p=${params.parallelism}$${b64(salt)}$${b64(hash)}`;
}

interface ParsedHash {
  params: Omit<Argon2Params, "saltBytes">;
  salt: Uint8Array;
  hash: Uint8Array;
}

export function parsePhc(phc: string): ParsedHash {
  const m = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/.exec(phc);
  if (!m) throw new PasswordHashError("stored password hash is not an argon2id v19 PHC string");
  const [memoryKiB, iterations, parallelism] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (memoryKiB > verifyMemoryMaxKiB || iterations > verifyIterationsMax || parallelism < 1 || parallelism > 16) {
    throw new PasswordHashError(`stored password hash asks for m=${memoryKiB} KiB, t=${iterations}, p=${parallelism}: over the limits (${verifyMemoryMaxKiB} KiB, ${verifyIterationsMax} passes)`);
  }
  const salt = unb64(m[4]!);
  const hash = unb64(m[5]!);
  return { params: { memoryKiB, iterations, parallelism, hashBytes: hash.length }, salt, hash };
}

/** Recomputes the hash and compares in constant time. */
export async function verifyPassword(password: string, phc: string): Promise<boolean> {
  const p = parsePhc(phc);
  const candidate = await raw(password, p.salt, p.params);
  return candidate.length === p.hash.length && timingSafeEqual(candidate, p.hash);
}

let dummyHash: Promise<string> | undefined;

/**
 * Spends the time of one verification without a user to check against, so a login for a
 * username that does not exist takes as long as a wrong password (no user enumeration by timing).
 */
export async function verifyNobody(password: string): Promise<false> {
  dummyHash ??= hashPassword("trivet-no-such-user");
  await verifyPassword(password, await dummyHash);
  return false;
}
