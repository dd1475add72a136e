// Secrets at rest: the CA private key travels in the replicated state only sealed (AES-256-GCM)
// under the cluster key-encryption key, `cluster.key` — 32 random bytes kept in each node's
// `<data-dir>/secrets/` (file 0600, directory 0700) and never in the Raft log or snapshots.
// A sealed value is text: "tsk1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>". The key id
// (first 8 bytes of SHA-256 of the key) tells a wrong cluster.key apart from altered data;
// the prefix and key id are authenticated as associated data.
import { createCipheriv, createDecipheriv, createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { ClusterError } from "./errors.ts";
import { cryptoRandom, type RandomBytes } from "./pki.ts";

export const kekBytes = 32;
export const kekFileName = "cluster.key";
export const sealedPrefix = "tsk1";
const nonceBytes = 12;
const tagBytes = 16;

/** Where a node keeps its cluster key: `<data-dir>/secrets`. */
export function secretsDir(dataDir: string): string {
  return path.join(dataDir, "secrets");
}

export function kekId(kek: Uint8Array): string {
  return createHash("sha256").update(kek).digest("hex").slice(0, 16);
}

function checkKek(kek: Uint8Array, doing: string): void {
  if (!(kek instanceof Uint8Array) || kek.byteLength !== kekBytes) {
    throw new ClusterError("kek_invalid", `${doing}: the key-encryption key must be ${kekBytes} bytes (got ${kek?.byteLength ?? typeof kek})`);
  }
}

/** Encrypts `plaintext` under `kek` with a fresh random nonce. */
export function sealSecret(plaintext: Uint8Array | string, kek: Uint8Array, random: RandomBytes = cryptoRandom): string {
  checkKek(kek, "sealing a secret");
  const head = `${sealedPrefix}.${kekId(kek)}`;
  const nonce = random(nonceBytes);
  const cipher = createCipheriv("aes-256-gcm", kek, nonce, { authTagLength: tagBytes });
  cipher.setAAD(Buffer.from(head));
  const body = Buffer.concat([nonce, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return `${head}.${body.toString("base64url")}`;
}

/** Decrypts a sealSecret() value; refuses a wrong key (sealed_wrong_key) or altered data (sealed_tampered). */
export function openSecret(sealed: string, kek: Uint8Array): Buffer {
  checkKek(kek, "opening a sealed secret");
  const m = /^([a-z0-9]+)\.([0-9a-f]{16})\.([A-Za-z0-9_-]+)$/.exec(typeof sealed === "string" ? sealed : "");
  if (!m || m[1] !== sealedPrefix) {
    throw new ClusterError("sealed_format", `opening a sealed secret: expected "${sealedPrefix}.<key id>.<data>" (got ${m ? `version "${m[1]}"` : "something else"})`);
  }
  if (m[2] !== kekId(kek)) {
    throw new ClusterError("sealed_wrong_key", `opening a sealed secret: it was sealed with key ${m[2]} but this node's ${kekFileName} is ${kekId(kek)}; copy the cluster's ${kekFileName} to this node`);
  }
  const body = Buffer.from(m[3]!, "base64url");
  if (body.byteLength < nonceBytes + tagBytes) throw new ClusterError("sealed_format", `opening a sealed secret: ${body.byteLength} bytes is too short`);
  const decipher = createDecipheriv("aes-256-gcm", kek, body.subarray(0, nonceBytes), { authTagLength: tagBytes });
  decipher.setAAD(Buffer.from(`${m[1]}.${m[2]}`));
  decipher.setAuthTag(body.subarray(body.byteLength - tagBytes));
  try {
    return Buffer.concat([decipher.update(body.subarray(nonceBytes, body.byteLength - tagBytes)), decipher.final()]);
  } catch (err) {
    throw new ClusterError("sealed_tampered", "opening a sealed secret: authentication failed, the sealed data was altered or corrupted", { cause: err });
  }
}

function readKek(file: string): Uint8Array {
  const st = fs.statSync(file);
  if ((st.mode & 0o077) !== 0) {
    throw new ClusterError("kek_permissions", `reading ${file}: mode ${(st.mode & 0o777).toString(8)} lets other users read the cluster key; run chmod 600 ${file}`);
  }
  const bytes = new Uint8Array(fs.readFileSync(file));
  if (bytes.byteLength !== kekBytes) throw new ClusterError("kek_invalid", `reading ${file}: expected ${kekBytes} bytes, found ${bytes.byteLength}`);
  return bytes;
}

/** Writes the key atomically (temp file 0600, fsync, rename, fsync dir); `dir` is created 0700. */
export function writeKek(dir: string, kek: Uint8Array): void {
  checkKek(kek, `writing ${path.join(dir, kekFileName)}`);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  const file = path.join(dir, kekFileName);
  const tmp = `${file}.tmp`;
  fs.rmSync(tmp, { force: true });
  const fd = fs.openSync(tmp, "wx", 0o600);
  try {
    fs.writeFileSync(fd, kek);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  const dfd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(dfd);
  } finally {
    fs.closeSync(dfd);
  }
}

/** The node's cluster key from `dir` (the secrets directory), made with `random` if absent. */
export function loadOrCreateKek(dir: string, random: RandomBytes = cryptoRandom): { kek: Uint8Array; created: boolean } {
  const file = path.join(dir, kekFileName);
  if (fs.existsSync(file)) return { kek: readKek(file), created: false };
  const kek = random(kekBytes);
  writeKek(dir, kek);
  return { kek, created: true };
}
