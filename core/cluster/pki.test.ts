// The cluster PKI: a CA, a node's CSR and the signed certificate, checked with Node's own
// X.509 parser (an independent reader), and the refusals of a bad or overreaching CSR.
import { X509Certificate } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ClusterError } from "./errors.ts";
import { certFingerprint, certInfo, createClusterCa, createCsr, generateNodeKey, newSerial, nodeSans, notBeforeBackdateMs, signNodeCert } from "./pki.ts";

const nowMs = Date.UTC(2026, 0, 15, 12, 0, 0);
const dayMs = 86_400_000;

function pemOf(der: Buffer, label: string): string {
  return `-----BEGIN ${label}-----\n${der.toString("base64")}\n-----END ${label}-----\n`;
}

function derOf(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, ""), "base64");
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ClusterError);
    return (err as ClusterError).code;
  }
  return "no error";
}

describe("cluster CA", () => {
  it("is a self-signed CA for the cluster, valid for the requested days", async () => {
    const ca = await createClusterCa({ clusterName: "lab", nowMs, validityDays: 30 });
    const c = new X509Certificate(ca.certPem);
    expect(c.ca).toBe(true);
    expect(c.subject).toContain("CN=Trivet cluster CA lab");
    expect(c.checkIssued(c) && c.verify(c.publicKey)).toBe(true);
    expect(Date.parse(c.validFrom)).toBe(nowMs - notBeforeBackdateMs);
    expect(Date.parse(c.validTo)).toBe(nowMs + 30 * dayMs);
    expect(c.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    expect(c.toLegacyObject().ext_key_usage).toBeUndefined();
    expect(certFingerprint(ca.certPem)).toBe(c.fingerprint256.replace(/:/g, "").toLowerCase());
  });

  it("refuses a cluster name that is not a DNS label", async () => {
    expect(await codeOf(createClusterCa({ clusterName: "Lab,O=evil", nowMs }))).toBe("invalid_argument");
  });
});

describe("node certificates", () => {
  const names = { nodeName: "n1", addresses: ["127.0.0.1", "localhost", "10.0.0.7", "::1"] };

  it("round trip: key → CSR → certificate with the node name, IP and DNS SANs, both usages", async () => {
    const ca = await createClusterCa({ clusterName: "lab", nowMs });
    const { keyPem } = await generateNodeKey();
    const csrPem = await createCsr({ keyPem, ...names });
    const serial = newSerial();
    const certPem = await signNodeCert({ ca, csrPem, ...names, nowMs, validityDays: 90, serial });
    const c = new X509Certificate(certPem);
    const caCert = new X509Certificate(ca.certPem);
    expect(c.ca).toBe(false);
    expect(c.checkIssued(caCert) && c.verify(caCert.publicKey)).toBe(true);
    expect(c.checkPrivateKey(await import("node:crypto").then((m) => m.createPrivateKey(keyPem)))).toBe(true);
    expect(c.subjectAltName).toBe("DNS:n1, IP Address:127.0.0.1, DNS:localhost, IP Address:10.0.0.7, IP Address:0:0:0:0:0:0:0:1");
    expect(c.keyUsage?.sort()).toEqual(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]);
    expect(c.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(c.checkIP("127.0.0.2")).toBeUndefined();
    expect(c.serialNumber.toLowerCase()).toBe(serial);
    const info = certInfo(certPem, ca.certPem);
    expect(info).toMatchObject({ subject: "CN=n1", dnsNames: ["n1", "localhost"], ipAddresses: ["127.0.0.1", "10.0.0.7", "::1"], isCa: false, serial });
    expect(info.notAfterMs - info.notBeforeMs).toBe(90 * dayMs + notBeforeBackdateMs);
    expect(info.issuerFingerprint).toBe(certFingerprint(ca.certPem));
    const otherCa = await createClusterCa({ clusterName: "lab", nowMs });
    expect(certInfo(certPem, otherCa.certPem).issuerFingerprint).toBeNull();
  });

  it("never outlives the CA", async () => {
    const ca = await createClusterCa({ clusterName: "lab", nowMs, validityDays: 10 });
    const { keyPem } = await generateNodeKey();
    const certPem = await signNodeCert({ ca, csrPem: await createCsr({ keyPem, ...names }), ...names, nowMs, validityDays: 365, serial: newSerial() });
    expect(certInfo(certPem).notAfterMs).toBe(certInfo(ca.certPem).notAfterMs);
  });

  it("refuses a CSR asking for other names than the join allows", async () => {
    const ca = await createClusterCa({ clusterName: "lab", nowMs });
    const { keyPem } = await generateNodeKey();
    const csrPem = await createCsr({ keyPem, nodeName: "n1", addresses: ["127.0.0.1", "192.168.1.1"] });
    const sign = (o: { nodeName: string; addresses: string[] }) => signNodeCert({ ca, csrPem, ...o, nowMs, serial: newSerial() });
    expect(await codeOf(sign({ nodeName: "n1", addresses: ["127.0.0.1"] }))).toBe("csr_names_mismatch");
    expect(await codeOf(sign({ nodeName: "n2", addresses: ["127.0.0.1", "192.168.1.1"] }))).toBe("csr_names_mismatch");
    // Same set in another order is the same request.
    expect(await codeOf(sign({ nodeName: "n1", addresses: ["192.168.1.1", "127.0.0.1"] }))).toBe("no error");
  });

  it("refuses a CSR whose signature does not verify", async () => {
    const ca = await createClusterCa({ clusterName: "lab", nowMs });
    const { keyPem } = await generateNodeKey();
    const der = derOf(await createCsr({ keyPem, ...names }));
    const at = der.indexOf(Buffer.from("n1"));
    der[at + 1] = "2".charCodeAt(0); // the subject now says "n2": the signature no longer covers it
    const err = await signNodeCert({ ca, csrPem: pemOf(der, "CERTIFICATE REQUEST"), ...names, nowMs, serial: newSerial() }).catch((e: unknown) => e);
    expect((err as ClusterError).code).toBe("csr_signature_invalid");
    expect((err as Error).message).toContain("signature does not verify");
  });

  it("refuses a CA key that does not belong to the CA certificate", async () => {
    const ca = await createClusterCa({ clusterName: "lab", nowMs });
    const other = await createClusterCa({ clusterName: "lab", nowMs });
    const { keyPem } = await generateNodeKey();
    const csrPem = await createCsr({ keyPem, ...names });
    expect(await codeOf(signNodeCert({ ca: { certPem: ca.certPem, keyPem: other.keyPem }, csrPem, ...names, nowMs, serial: newSerial() }))).toBe("ca_key_mismatch");
  });

  it("validates names: ports, upper case and junk are refused", () => {
    expect(() => nodeSans({ nodeName: "n1", addresses: ["127.0.0.1:7443"] })).toThrow(/without a port/);
    expect(() => nodeSans({ nodeName: "N1", addresses: [] })).toThrow(/DNS label/);
    expect(nodeSans({ nodeName: "n1", addresses: ["n1", "LOCALHOST", "127.0.0.1", "127.0.0.1"] }))
      .toEqual([{ type: "dns", value: "n1" }, { type: "dns", value: "localhost" }, { type: "ip", value: "127.0.0.1" }]);
  });

  it("serials are positive, without a leading zero octet, from the injected randomness", () => {
    expect(newSerial((n) => new Uint8Array(n).fill(0xff))).toBe("7f" + "ff".repeat(15));
    expect(newSerial((n) => new Uint8Array(n))).toBe("01" + "00".repeat(15));
  });
});
