// The cluster's PKI: one self-made CA per cluster signs a certificate for each node, used for
// mutual TLS between nodes and as the server certificate of the HTTPS API. ECDSA P-256 with
// SHA-256 throughout. The joining node makes its own key and a CSR (its private key never
// leaves it); the cluster side checks the CSR against what the join allows and signs.
// Clock and serial numbers come from the caller; keys come from Node's WebCrypto.
// Certificates are built with @peculiar/x509 (pure JS over WebCrypto, bundles with esbuild);
// it needs a Reflect metadata polyfill loaded before it, hence the first import.
import "reflect-metadata";
import { createHash, createPublicKey, randomBytes, webcrypto, X509Certificate as NodeX509 } from "node:crypto";
import net from "node:net";
import * as x509 from "@peculiar/x509";
import { ClusterError } from "./errors.ts";

x509.cryptoProvider.set(webcrypto);

export const caValidityDaysDefault = 3650;
/** Node certificates live as long as the CA by default: renewal is not automated yet. */
export const nodeCertValidityDaysDefault = 3650;
/** notBefore is set this far in the past so peers whose clocks lag a little accept a new cert. */
export const notBeforeBackdateMs = 5 * 60 * 1000;
export const clusterNameMaxChars = 63;
export const nodeNameMaxChars = 63;
export const certAddressesMax = 16;
/** Serial numbers are this many random bytes (RFC 5280 allows up to 20 octets). */
export const serialBytes = 16;

const dayMs = 24 * 60 * 60 * 1000;
const dnsLabel = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const dnsName = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;
const ecdsa = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const sanOid = "2.5.29.17";

export type RandomBytes = (bytes: number) => Uint8Array;
export const cryptoRandom: RandomBytes = (n) => new Uint8Array(randomBytes(n));

export interface ClusterCa {
  certPem: string;
  /** PKCS#8 PEM; seal it (secrets.ts) before it goes anywhere but memory. */
  keyPem: string;
}

/** The names a node certificate carries: DNS name = node name, plus each address as IP or DNS. */
export interface NodeNames {
  nodeName: string;
  /** Hosts without ports: IPv4/IPv6 literals become IP SANs, anything else a DNS SAN ("localhost"). */
  addresses: readonly string[];
}

function invalid(what: string, reason: string): never {
  throw new ClusterError("invalid_argument", `${what} ${reason}`);
}

function checkName(what: string, name: string, maxChars: number): void {
  if (typeof name !== "string" || name.length > maxChars || !dnsLabel.test(name)) {
    invalid(what, `must be a lower-case DNS label of 1 to ${maxChars} characters (got ${JSON.stringify(name)})`);
  }
}

function checkDays(what: string, days: number): void {
  if (!Number.isSafeInteger(days) || days < 1) invalid(what, `must be a whole number of days ≥ 1 (got ${days})`);
}

/** Validates node names and returns the SAN list, node name first, without duplicates. */
export function nodeSans({ nodeName, addresses }: NodeNames): x509.JsonGeneralName[] {
  checkName("node name", nodeName, nodeNameMaxChars);
  if (!Array.isArray(addresses) || addresses.length > certAddressesMax) invalid("addresses", `must be a list of at most ${certAddressesMax} hosts`);
  const sans: x509.JsonGeneralName[] = [{ type: "dns", value: nodeName }];
  for (const a of addresses) {
    const host = typeof a === "string" ? a.toLowerCase() : "";
    if (net.isIP(host) === 0 && !dnsName.test(host)) {
      invalid("address", `${JSON.stringify(a)} must be an IP address or a DNS name, without a port`);
    }
    const san: x509.JsonGeneralName = { type: net.isIP(host) ? "ip" : "dns", value: host };
    if (!sans.some((s) => s.type === san.type && s.value === san.value)) sans.push(san);
  }
  return sans;
}

function pemBody(pem: string, label: string): Uint8Array {
  const m = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`).exec(pem);
  if (!m?.[1]) throw new ClusterError("pem_invalid", `reading PEM: expected a "${label}" block`);
  return new Uint8Array(Buffer.from(m[1].replace(/\s+/g, ""), "base64"));
}

function toPem(der: ArrayBuffer, label: string): string {
  const b64 = Buffer.from(der).toString("base64").replace(/(.{64})/g, "$1\n").replace(/\n$/, "");
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** A fresh ECDSA P-256 key pair; the private key as PKCS#8 PEM. */
export async function generateNodeKey(): Promise<{ keyPem: string }> {
  const keys = await webcrypto.subtle.generateKey(ecdsa, true, ["sign", "verify"]);
  return { keyPem: toPem(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey), "PRIVATE KEY") };
}

async function importKeys(keyPem: string): Promise<webcrypto.CryptoKeyPair> {
  try {
    const privateKey = await webcrypto.subtle.importKey("pkcs8", pemBody(keyPem, "PRIVATE KEY"), ecdsa, false, ["sign"]);
    const spki = createPublicKey(keyPem).export({ type: "spki", format: "der" });
    const publicKey = await webcrypto.subtle.importKey("spki", spki, ecdsa, true, ["verify"]);
    return { privateKey, publicKey } as webcrypto.CryptoKeyPair;
  } catch (err) {
    if (err instanceof ClusterError) throw err;
    throw new ClusterError("pem_invalid", "reading private key: not an ECDSA P-256 PKCS#8 key", { cause: err });
  }
}

/** A positive serial number as hex, from `serialBytes` random bytes. */
export function newSerial(random: RandomBytes = cryptoRandom): string {
  const b = random(serialBytes);
  b[0] = (b[0]! & 0x7f) | 0x01; // positive and without a leading zero octet (DER INTEGER)
  return Buffer.from(b).toString("hex");
}

export interface CreateCaOptions {
  clusterName: string;
  nowMs: number;
  validityDays?: number;
  random?: RandomBytes;
}

/** A self-signed CA (CA:true, pathlen 0, keyCertSign + cRLSign) for the cluster. */
export async function createClusterCa(o: CreateCaOptions): Promise<ClusterCa> {
  const days = o.validityDays ?? caValidityDaysDefault;
  checkName("cluster name", o.clusterName, clusterNameMaxChars);
  checkDays("CA validity", days);
  const keys = await webcrypto.subtle.generateKey(ecdsa, true, ["sign", "verify"]);
  const name: x509.JsonName = [{ CN: [`Trivet cluster CA ${o.clusterName}`] }, { O: [`trivet:${o.clusterName}`] }];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: newSerial(o.random),
    subject: name,
    issuer: name,
    notBefore: new Date(o.nowMs - notBeforeBackdateMs),
    notAfter: new Date(o.nowMs + days * dayMs),
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    signingAlgorithm: ecdsa,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString("pem") + "\n", keyPem: toPem(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey), "PRIVATE KEY") };
}

/** A CSR signed by the node's key, asking for CN = node name and the SANs of nodeSans(). */
export async function createCsr(o: NodeNames & { keyPem: string }): Promise<string> {
  const sans = nodeSans(o);
  const keys = await importKeys(o.keyPem);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [{ CN: [o.nodeName] }],
    keys,
    signingAlgorithm: ecdsa,
    extensions: [new x509.SubjectAlternativeNameExtension(sans)],
  });
  return csr.toString("pem") + "\n";
}

function sanKey(s: { type: string; value: string }): string {
  return `${s.type}:${s.value}`;
}

async function checkCsr(csrPem: string, names: NodeNames): Promise<x509.Pkcs10CertificateRequest> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(pemBody(csrPem, "CERTIFICATE REQUEST"));
  } catch (err) {
    if (err instanceof ClusterError) throw err;
    throw new ClusterError("pem_invalid", "reading certificate request: not a PKCS#10 request", { cause: err });
  }
  if (!(await csr.verify())) {
    throw new ClusterError("csr_signature_invalid", `signing a certificate for node ${names.nodeName}: the request's signature does not verify`);
  }
  const allowed = nodeSans(names).map(sanKey).sort();
  const ext = csr.getExtension(sanOid);
  const asked = ext instanceof x509.SubjectAlternativeNameExtension ? ext.names.toJSON().map(sanKey).sort() : [];
  const cn = csr.subjectName.getField("CN");
  if (cn.length !== 1 || cn[0] !== names.nodeName || asked.join(",") !== allowed.join(",")) {
    throw new ClusterError("csr_names_mismatch", `signing a certificate for node ${names.nodeName}: the request asks for CN=${cn.join("+")} and ` +
      `[${asked.join(", ")}] but this join allows CN=${names.nodeName} and [${allowed.join(", ")}]`);
  }
  return csr;
}

export interface SignNodeCertOptions extends NodeNames {
  ca: ClusterCa;
  csrPem: string;
  nowMs: number;
  validityDays?: number;
  /** Hex, from newSerial(); recorded with the certificate. */
  serial: string;
}

/**
 * Signs a node certificate (CA:false, digitalSignature, serverAuth + clientAuth) for a CSR
 * whose signature verifies and whose CN and SANs are exactly the allowed ones. The SANs
 * written are the allowed values; notAfter never passes the CA's.
 */
export async function signNodeCert(o: SignNodeCertOptions): Promise<string> {
  const days = o.validityDays ?? nodeCertValidityDaysDefault;
  checkDays("node certificate validity", days);
  if (!/^[0-9a-f]{2,40}$/.test(o.serial)) invalid("serial", `must be 1 to 20 bytes of lower-case hex (got ${JSON.stringify(o.serial)})`);
  const csr = await checkCsr(o.csrPem, o);
  const caCert = new x509.X509Certificate(pemBody(o.ca.certPem, "CERTIFICATE"));
  const caKeys = await importKeys(o.ca.keyPem);
  const caSpki = Buffer.from(await webcrypto.subtle.exportKey("spki", caKeys.publicKey));
  if (!caSpki.equals(Buffer.from(caCert.publicKey.rawData))) {
    throw new ClusterError("ca_key_mismatch", "signing a node certificate: the CA private key does not belong to the CA certificate");
  }
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: o.serial,
    subject: [{ CN: [o.nodeName] }],
    issuer: caCert.subjectName,
    notBefore: new Date(o.nowMs - notBeforeBackdateMs),
    notAfter: new Date(Math.min(o.nowMs + days * dayMs, caCert.notAfter.getTime())),
    publicKey: csr.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: ecdsa,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(nodeSans(o)),
      await x509.SubjectKeyIdentifierExtension.create(csr.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  return cert.toString("pem") + "\n";
}

function nodeCert(pem: string): NodeX509 {
  try {
    return new NodeX509(pem);
  } catch (err) {
    throw new ClusterError("pem_invalid", "reading certificate: not a PEM X.509 certificate", { cause: err });
  }
}

/**
 * SHA-256 over the certificate's DER, as 64 lower-case hex digits without separators (the
 * form join tokens carry). `openssl x509 -fingerprint -sha256` prints the same digits in
 * upper case with colons; normalizeFingerprint() (tokens.ts) accepts either.
 */
/** Fingerprints of the few certificates a node looks at (its CA above all), by PEM text. */
const fingerprints = new Map<string, string>();
const fingerprintsCachedMax = 64;

export function certFingerprint(pem: string): string {
  let fp = fingerprints.get(pem);
  if (fp === undefined) {
    fp = createHash("sha256").update(nodeCert(pem).raw).digest("hex");
    if (fingerprints.size >= fingerprintsCachedMax) fingerprints.clear();
    fingerprints.set(pem, fp);
  }
  return fp;
}

export interface CertInfo {
  subject: string;
  issuer: string;
  serial: string;
  dnsNames: string[];
  ipAddresses: string[];
  notBeforeMs: number;
  notAfterMs: number;
  isCa: boolean;
  fingerprint: string;
  /** Fingerprint of `caPem` when it was given and signed this certificate, else null. */
  issuerFingerprint: string | null;
}

/** What `cluster status` shows about a certificate. */
export function certInfo(pem: string, caPem?: string): CertInfo {
  const cert = nodeCert(pem);
  const parsed = new x509.X509Certificate(new Uint8Array(cert.raw));
  const ext = parsed.getExtension(x509.SubjectAlternativeNameExtension);
  const sans = ext ? ext.names.toJSON() : [];
  let issuerFingerprint: string | null = null;
  if (caPem !== undefined) {
    const ca = nodeCert(caPem);
    if (cert.checkIssued(ca) && cert.verify(ca.publicKey)) issuerFingerprint = certFingerprint(caPem);
  }
  return {
    subject: parsed.subject,
    issuer: parsed.issuer,
    serial: parsed.serialNumber.toLowerCase(),
    dnsNames: sans.filter((s) => s.type === "dns").map((s) => s.value),
    ipAddresses: sans.filter((s) => s.type === "ip").map((s) => s.value),
    notBeforeMs: parsed.notBefore.getTime(),
    notAfterMs: parsed.notAfter.getTime(),
    isCa: cert.ca,
    fingerprint: certFingerprint(pem),
    issuerFingerprint,
  };
}
