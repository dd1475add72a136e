// argon2id hashing: PHC format with the parameters in it, verification, refusal of hostile
// parameters, and that a hash from fixed inputs is stable (what an upgrade must keep verifying).
import { describe, expect, it } from "vitest";
import { defaultArgon2Params, hashPassword, parsePhc, PasswordHashError, verifyNobody, verifyPassword } from "./passwords.ts";

const fixedSalt = (n: number) => new Uint8Array(n).fill(7);
const fast = { ...defaultArgon2Params, memoryKiB: 1024, iterations: 1 };

describe("passwords", () => {
  it("hashes with the OWASP minimum parameters into a PHC string that verifies", async () => {
    const h = await hashPassword("correct horse battery staple");
    expect(h).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    expect(await verifyPassword("correct horse battery staple", h)).toBe(true);
    expect(await verifyPassword("correct horse battery stapl", h)).toBe(false);
    expect(await hashPassword("correct horse battery staple")).not.toBe(h);
  });

  it("verifies with the parameters stored in the hash, not the current defaults", async () => {
    const h = await hashPassword("pw with old params", fast, fixedSalt);
    expect(parsePhc(h).params).toEqual({ memoryKiB: 1024, iterations: 1, parallelism: 1, hashBytes: 32 });
    expect(await verifyPassword("pw with old params", h)).toBe(true);
    expect(await hashPassword("pw with old params", fast, fixedSalt)).toBe(h);
  });

  it("refuses malformed hashes and hashes asking for too much memory", async () => {
    await expect(verifyPassword("x", "$2b$10$notargon")).rejects.toBeInstanceOf(PasswordHashError);
    const greedy = (await hashPassword("x", fast, fixedSalt)).replace("m=1024", "m=4194304");
    await expect(verifyPassword("x", greedy)).rejects.toThrow(/over the limits/);
  });

  it("spends a verification for unknown users and never succeeds", async () => {
    expect(await verifyNobody("anything")).toBe(false);
  });
});
