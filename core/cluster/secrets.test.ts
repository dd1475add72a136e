// Sealed secrets and the cluster key file: round trip, and clear refusals of a wrong key,
// altered data, a bad format, and a key file others can read.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ClusterError } from "./errors.ts";
import { kekFileName, loadOrCreateKek, openSecret, sealSecret, writeKek } from "./secrets.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "trivet-secrets-"));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const key = (fill: number) => new Uint8Array(32).fill(fill);

function errorOf(fn: () => unknown): ClusterError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ClusterError);
    return err as ClusterError;
  }
  throw new Error("expected an error");
}

describe("sealSecret / openSecret", () => {
  const secret = "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n";

  it("round trips, with a fresh nonce each time, and the plaintext not visible", () => {
    const a = sealSecret(secret, key(1));
    const b = sealSecret(secret, key(1));
    expect(a).not.toBe(b);
    expect(a.startsWith("tsk1.")).toBe(true);
    expect(a).not.toContain("PRIVATE");
    expect(openSecret(a, key(1)).toString()).toBe(secret);
    expect(openSecret(b, key(1)).toString()).toBe(secret);
  });

  it("a wrong key is named as such", () => {
    const e = errorOf(() => openSecret(sealSecret(secret, key(1)), key(2)));
    expect(e.code).toBe("sealed_wrong_key");
    expect(e.message).toMatch(/sealed with key [0-9a-f]{16} but this node's cluster.key is [0-9a-f]{16}/);
  });

  it("any flipped bit in nonce, ciphertext or tag is refused as tampering", () => {
    const sealed = sealSecret(secret, key(1));
    const [prefix, id, body] = sealed.split(".") as [string, string, string];
    const bytes = Buffer.from(body, "base64url");
    for (const at of [0, 12, 20, bytes.length - 1]) {
      const flipped = Buffer.from(bytes);
      flipped[at]! ^= 0x04;
      const e = errorOf(() => openSecret(`${prefix}.${id}.${flipped.toString("base64url")}`, key(1)));
      expect(e.code).toBe("sealed_tampered");
      expect(e.message).toContain("authentication failed");
    }
  });

  it("refuses an unknown version, a truncated body and a key of the wrong size", () => {
    const sealed = sealSecret(secret, key(1));
    expect(errorOf(() => openSecret(sealed.replace("tsk1", "tsk9"), key(1))).message).toContain('version "tsk9"');
    expect(errorOf(() => openSecret("plain text", key(1))).code).toBe("sealed_format");
    expect(errorOf(() => openSecret(`${sealed.split(".").slice(0, 2).join(".")}.AAAA`, key(1))).code).toBe("sealed_format");
    expect(errorOf(() => sealSecret(secret, new Uint8Array(16))).code).toBe("kek_invalid");
  });
});

describe("cluster.key on disk", () => {
  it("is created once (0600 in a 0700 directory) and then loaded", () => {
    const dir = path.join(root, "a", "secrets");
    const first = loadOrCreateKek(dir);
    expect(first.created).toBe(true);
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    expect(fs.statSync(path.join(dir, kekFileName)).mode & 0o777).toBe(0o600);
    const again = loadOrCreateKek(dir);
    expect(again.created).toBe(false);
    expect(Buffer.from(again.kek).equals(Buffer.from(first.kek))).toBe(true);
  });

  it("a key written by writeKek (a joining node) is the one loaded", () => {
    const dir = path.join(root, "b", "secrets");
    writeKek(dir, key(7));
    expect(loadOrCreateKek(dir)).toEqual({ kek: key(7), created: false });
  });

  it("refuses a key file others can read, and one of the wrong size", () => {
    const dir = path.join(root, "c", "secrets");
    writeKek(dir, key(3));
    const file = path.join(dir, kekFileName);
    fs.chmodSync(file, 0o644);
    expect(errorOf(() => loadOrCreateKek(dir)).message).toContain(`chmod 600 ${file}`);
    fs.writeFileSync(file, Buffer.alloc(5), { mode: 0o600 });
    fs.chmodSync(file, 0o600);
    expect(errorOf(() => loadOrCreateKek(dir)).code).toBe("kek_invalid");
  });
});
