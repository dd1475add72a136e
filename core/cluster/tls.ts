// TLS set-up from the cluster PKI: grpc-js credentials for mutual TLS between nodes, the
// bootstrap path of a joining node (which knows only the CA fingerprint from its token), and
// Node https options for the HTTPS API. Every server sends its certificate followed by the CA
// certificate, so that a joiner can fetch the CA over the wire and pin it by fingerprint.
//
// Server name check: clients keep grpc-js's (and Node's) default check of the dialled host
// against the certificate's SANs. Node addresses are usually IP literals; node certificates
// carry them as IP SANs (pki.ts), which tls.checkServerIdentity matches, so no
// ssl_target_name_override is needed. (grpc-js sends an IP as SNI, which Node flags as DEP0123;
// the trivet executable silences that one warning, cmd/trivet.ts. Test and bench harnesses that
// dial nodes from their own process still print it once.)
import { createHash, X509Certificate } from "node:crypto";
import net from "node:net";
import tls from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { ClusterError } from "./errors.ts";

export const caFetchTimeoutMs = 5000;

export interface TlsIdentity {
  /** The cluster CA certificate (trust anchor). */
  caPem: string;
  /** This node's certificate, signed by the CA. */
  certPem: string;
  keyPem: string;
}

/**
 * "require": the TLS handshake refuses clients without a certificate from the cluster CA
 * (node-to-node port). "request": clients may come without one (a joining node); handlers then
 * authorize per call with peerNodeName() — a present certificate has been verified.
 */
export type ClientCertificateMode = "require" | "request";

/** The PEM chain a node presents: its certificate, then the CA (so joiners can pin the CA). */
export function chainOf(id: TlsIdentity): string {
  return `${id.certPem.trimEnd()}\n${id.caPem.trimEnd()}\n`;
}

/**
 * A CertificateProvider that serves fixed PEMs. It answers a new listener in a microtask, not at
 * once: grpc-js (1.14) adds the server's watcher only after registering with the provider, so a
 * synchronous answer would be lost and the server would drop every connection.
 */
function staticProvider(id: TlsIdentity): grpc.experimental.CertificateProvider {
  return {
    addCaCertificateListener: (l) => queueMicrotask(() => l({ caCertificate: Buffer.from(id.caPem) })),
    removeCaCertificateListener: () => {},
    addIdentityCertificateListener: (l) => queueMicrotask(() => l({ certificate: Buffer.from(chainOf(id)), privateKey: Buffer.from(id.keyPem) })),
    removeIdentityCertificateListener: () => {},
  };
}

export function serverCredentials(id: TlsIdentity, mode: ClientCertificateMode = "require"): grpc.ServerCredentials {
  if (mode === "require") {
    return grpc.ServerCredentials.createSsl(Buffer.from(id.caPem), [{ cert_chain: Buffer.from(chainOf(id)), private_key: Buffer.from(id.keyPem) }], true);
  }
  const provider = staticProvider(id);
  return grpc.experimental.createCertificateProviderServerCredentials(provider, provider, false);
}

/**
 * The node name (certificate CN) of the peer of a server call when it presented a certificate
 * that verified against the cluster CA; null for a peer without one.
 */
export function peerNodeName(call: { getAuthContext(): { sslPeerCertificate?: tls.PeerCertificate } | null }): string | null {
  const cn = call.getAuthContext()?.sslPeerCertificate?.subject?.CN;
  return typeof cn === "string" && cn.length > 0 ? cn : null;
}

/** Mutual TLS to another node: verifies its certificate against the CA and its SANs against the dialled host. */
export function channelCredentials(id: TlsIdentity): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(Buffer.from(id.caPem), Buffer.from(id.keyPem), Buffer.from(chainOf(id)));
}

/** TLS for a joining node once it holds the pinned CA (fetchPinnedCa): server verified, no client certificate. */
export function bootstrapChannelCredentials(caPem: string): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(Buffer.from(caPem));
}

function toPem(der: Buffer): string {
  return `-----BEGIN CERTIFICATE-----\n${der.toString("base64").replace(/(.{64})/g, "$1\n").replace(/\n$/, "")}\n-----END CERTIFICATE-----\n`;
}

function splitHostPort(address: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:]+)):(\d{1,5})$/.exec(address);
  const port = Number(m?.[3]);
  if (!m || port < 1 || port > 65535) throw new ClusterError("invalid_argument", `address ${JSON.stringify(address)} must be "host:port"`);
  return { host: m[1] ?? m[2]!, port };
}

/** Picks the CA with the pinned fingerprint out of the chain the server sent, and checks it issued the leaf. */
function pinCa(address: string, peer: tls.DetailedPeerCertificate, caFingerprint: string): string {
  const seen: string[] = [];
  for (let c: tls.DetailedPeerCertificate | undefined = peer; c?.raw && seen.length < 10; c = c.issuerCertificate) {
    const fp = createHash("sha256").update(c.raw).digest("hex");
    if (seen.includes(fp)) break;
    seen.push(fp);
    if (fp !== caFingerprint) continue;
    const ca = new X509Certificate(c.raw);
    const leaf = new X509Certificate(peer.raw);
    if (ca.ca && leaf.checkIssued(ca) && leaf.verify(ca.publicKey)) return toPem(c.raw);
  }
  throw new ClusterError("ca_fingerprint_mismatch", `joining via ${address}: the server's certificate chain [${seen.join(", ")}] has no CA with ` +
    `fingerprint ${caFingerprint} that issued its certificate; the token is for another cluster, or something else answers at this address`);
}

/**
 * Connects to a member (without trusting anything yet), takes the CA certificate the server
 * sends after its own, and returns it as PEM only if its SHA-256 matches the token's pin and it
 * signed the server's certificate. Channels opened afterwards with bootstrapChannelCredentials()
 * then verify the server properly (chain and SANs) against this CA.
 */
export function fetchPinnedCa(address: string, caFingerprint: string, timeoutMs = caFetchTimeoutMs): Promise<string> {
  const { host, port } = splitHostPort(address);
  return new Promise<string>((resolve, reject) => {
    // Chain checks are done by pinCa: nothing from this connection is used unless it matches the pin.
    const socket = tls.connect({ host, port, rejectUnauthorized: false, ALPNProtocols: ["h2"], ...(net.isIP(host) ? {} : { servername: host }) });
    const done = (err: Error | null, pem?: string) => {
      socket.destroy();
      if (err) reject(err);
      else resolve(pem!);
    };
    socket.setTimeout(timeoutMs, () => done(new ClusterError("tls_connect", `fetching the cluster CA from ${address}: no TLS handshake within ${timeoutMs} ms`)));
    socket.once("error", (err) => done(new ClusterError("tls_connect", `fetching the cluster CA from ${address}: ${err.message}`, { cause: err })));
    socket.once("secureConnect", () => {
      try {
        done(null, pinCa(address, socket.getPeerCertificate(true), caFingerprint));
      } catch (err) {
        done(err as Error);
      }
    });
  });
}

/** Options for the HTTPS API server (same certificate; clients are not asked for one). */
export function httpsServerOptions(id: TlsIdentity): tls.TlsOptions {
  return { cert: chainOf(id), key: id.keyPem, minVersion: "TLSv1.2", requestCert: false };
}
