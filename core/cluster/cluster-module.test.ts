// The cluster state module applied through the real StateMachine: one init only, tokens single
// use by log order, expiry by proposer time, validation before proposal, node certificates.
import { describe, expect, it } from "vitest";
import { EntryType } from "../raft/types.ts";
import { encodeEnvelope } from "../state/commands.ts";
import { CommandError } from "../state/errors.ts";
import { StateMachine } from "../state/state-machine.ts";
import { listJoinTokens, listNodeCerts, readCluster, readJoinToken, readNodeCert } from "./cluster-module.ts";
import { createClusterCa, createCsr, generateNodeKey, newSerial, signNodeCert } from "./pki.ts";
import { sealSecret } from "./secrets.ts";
import { createJoinToken, hashJoinSecret, parseJoinToken } from "./tokens.ts";

const t0 = 1_800_000_000_000;

/** Applies ext commands as consecutive log entries; returns each command's result. */
function driver(sm: StateMachine) {
  let index = 0;
  return (name: string, payload: unknown, atMs = t0, clientId = "n1") => {
    // Validation throws before proposal: such a command takes no log position.
    const data = encodeEnvelope({ clientId, seq: index + 1, atMs, command: { type: "ext", name, payload } });
    index += 1;
    const [r] = sm.apply([{ index, term: 1, type: EntryType.Normal, data }]);
    if (r?.kind !== "command") throw new Error(`entry ${index} was ${r?.kind}`);
    return r.result;
  };
}

async function initialized() {
  const sm = StateMachine.open(":memory:");
  const run = driver(sm);
  const ca = await createClusterCa({ clusterName: "lab", nowMs: t0 });
  const caKeySealed = sealSecret(ca.keyPem, new Uint8Array(32).fill(9));
  expect(run("cluster.init", { name: "lab", caCertPem: ca.certPem, caKeySealed })).toEqual({ ok: true });
  return { sm, run, ca, caKeySealed };
}

const random = (() => {
  let k = 0;
  return (n: number) => Uint8Array.from({ length: n }, () => (k = (k * 31 + 7) & 0xff));
})();

describe("cluster state module", () => {
  it("cluster.init stores the sealed CA key once; a second init is refused", async () => {
    const { sm, run, ca, caKeySealed } = await initialized();
    expect(sm.read(readCluster).value).toEqual({ name: "lab", caCertPem: ca.certPem, caKeySealed, createdAtMs: t0 });
    const again = run("cluster.init", { name: "other", caCertPem: ca.certPem, caKeySealed });
    expect(again).toMatchObject({ ok: false, code: "already_initialized" });
    expect(sm.read(readCluster).value?.name).toBe("lab");
  });

  it("refuses a plain private key in place of a sealed one, before proposal", async () => {
    const ca = await createClusterCa({ clusterName: "lab", nowMs: t0 });
    const env = { clientId: "c", seq: 1, atMs: t0, command: { type: "ext" as const, name: "cluster.init", payload: { name: "lab", caCertPem: ca.certPem, caKeySealed: ca.keyPem } } };
    expect(() => encodeEnvelope(env)).toThrow(CommandError);
    expect(() => encodeEnvelope(env)).toThrow(/field "caKeySealed" must be a sealed key/);
  });

  it("a token is consumed once: the second consume fails with token_used", async () => {
    const { sm, run } = await initialized();
    const { token, record } = createJoinToken({ caFingerprint: "00".repeat(32), addresses: ["127.0.0.1:7443"], ttlMs: 60_000, nowMs: t0, random });
    expect(run("join_token.create", record)).toEqual({ ok: true });
    const secretHash = hashJoinSecret(parseJoinToken(token).secret);
    expect(run("join_token.consume", { id: record.id, secretHash, usedBy: "n2" }, t0 + 10)).toEqual({ ok: true });
    const second = run("join_token.consume", { id: record.id, secretHash, usedBy: "n3" }, t0 + 20, "n2");
    expect(second).toMatchObject({ ok: false, code: "token_used" });
    expect(sm.read((db) => readJoinToken(db, record.id)).value).toMatchObject({ usedAtMs: t0 + 10, usedBy: "n2" });
  });

  it("expiry is judged by the proposer's atMs; a wrong secret and an unknown id are refused", async () => {
    const { sm, run } = await initialized();
    const { token, record } = createJoinToken({ caFingerprint: "00".repeat(32), addresses: ["h:1"], ttlMs: 1000, nowMs: t0, random });
    run("join_token.create", record);
    const secretHash = hashJoinSecret(parseJoinToken(token).secret);
    expect(run("join_token.consume", { id: record.id, secretHash: "f".repeat(64), usedBy: "n2" }, t0 + 1)).toMatchObject({ ok: false, code: "token_secret_mismatch" });
    expect(run("join_token.consume", { id: record.id, secretHash, usedBy: "n2" }, t0 + 1000)).toMatchObject({ ok: false, code: "token_expired" });
    expect(run("join_token.consume", { id: "0".repeat(16), secretHash, usedBy: "n2" }, t0 + 1)).toMatchObject({ ok: false, code: "not_found" });
    expect(sm.read((db) => readJoinToken(db, record.id)).value?.usedAtMs).toBeNull();
  });

  it("join_token.create needs an initialized cluster, a fresh id, a bounded TTL, and prunes old tokens", async () => {
    const bare = driver(StateMachine.open(":memory:"));
    const { record } = createJoinToken({ caFingerprint: "00".repeat(32), addresses: ["h:1"], ttlMs: 1000, nowMs: t0, random });
    expect(bare("join_token.create", record)).toMatchObject({ ok: false, code: "not_initialized" });
    const { sm, run } = await initialized();
    run("join_token.create", record);
    expect(run("join_token.create", record)).toMatchObject({ ok: false, code: "already_exists" });
    expect(() => run("join_token.create", { ...record, expiresAtMs: t0 + 8 * 86_400_000 })).toThrow(/field "expiresAtMs"/);
    expect(() => run("join_token.create", { ...record, secretHash: "nope" })).toThrow(/field "secretHash"/);
    const later = createJoinToken({ caFingerprint: "00".repeat(32), addresses: ["h:1"], ttlMs: 1000, nowMs: t0 + 8 * 86_400_000, random });
    run("join_token.create", later.record, later.record.createdAtMs);
    expect(sm.read(listJoinTokens).value.map((t) => t.id)).toEqual([later.record.id]);
  });

  it("node_cert.record upserts by node id and is readable; node_cert.remove deletes", async () => {
    const { sm, run, ca } = await initialized();
    const names = { nodeName: "n2", addresses: ["127.0.0.1"] };
    const { keyPem } = await generateNodeKey();
    const serial = newSerial();
    const certPem = await signNodeCert({ ca, csrPem: await createCsr({ keyPem, ...names }), ...names, nowMs: t0, serial });
    expect(run("node_cert.record", { nodeId: 2, name: "n2", certPem, serial, notAfterMs: t0 + 5 })).toEqual({ ok: true });
    expect(run("node_cert.record", { nodeId: 2, name: "n2", certPem, serial, notAfterMs: t0 + 9 })).toEqual({ ok: true });
    expect(sm.read((db) => readNodeCert(db, 2)).value).toEqual({ nodeId: 2, name: "n2", certPem, serial, notAfterMs: t0 + 9 });
    expect(() => run("node_cert.record", { nodeId: 0, name: "n2", certPem, serial, notAfterMs: 1 })).toThrow(/field "nodeId"/);
    expect(run("node_cert.remove", { nodeId: 2 })).toEqual({ ok: true, removed: true });
    expect(sm.read(listNodeCerts).value).toEqual([]);
  });
});
