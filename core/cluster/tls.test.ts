// Mutual TLS with real grpc-js servers and clients on 127.0.0.1 (matched by IP SAN), the
// refusals of strangers on either side, the bootstrap path that pins the CA by fingerprint,
// and the HTTPS options.
import https from "node:https";
import * as grpc from "@grpc/grpc-js";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { listenGrpc } from "../api/grpc-listen.ts";
import { ClusterError } from "./errors.ts";
import { certFingerprint, createClusterCa, createCsr, generateNodeKey, newSerial, signNodeCert, type ClusterCa } from "./pki.ts";
import { bootstrapChannelCredentials, channelCredentials, fetchPinnedCa, httpsServerOptions, peerNodeName, serverCredentials, type ClientCertificateMode, type TlsIdentity } from "./tls.ts";

const callDeadlineMs = 5000;
const identity = (b: Buffer) => b;
const echoService: grpc.ServiceDefinition = {
  whoAmI: { path: "/test.Echo/WhoAmI", requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity },
};
const EchoClient = grpc.makeGenericClientConstructor(echoService, "Echo");
type Echo = grpc.Client & { whoAmI(req: Buffer, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Buffer) => void): void };

async function nodeIdentity(ca: ClusterCa, nodeName: string, addresses: string[]): Promise<TlsIdentity> {
  const { keyPem } = await generateNodeKey();
  const csrPem = await createCsr({ keyPem, nodeName, addresses });
  const certPem = await signNodeCert({ ca, csrPem, nodeName, addresses, nowMs: Date.now(), serial: newSerial() });
  return { caPem: ca.certPem, certPem, keyPem };
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A server answering WhoAmI with the verified client's node name, or "anonymous". */
async function startServer(id: TlsIdentity, mode: ClientCertificateMode = "require"): Promise<string> {
  const server = new grpc.Server();
  server.addService(echoService, {
    whoAmI: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from(peerNodeName(call) ?? "anonymous")),
  });
  const port = await listenGrpc(server, "127.0.0.1:0", serverCredentials(id, mode));
  cleanups.push(() => server.forceShutdown());
  return `127.0.0.1:${port}`;
}

function whoAmI(address: string, creds: grpc.ChannelCredentials): Promise<string> {
  const client = new EchoClient(address, creds) as unknown as Echo;
  cleanups.push(() => client.close());
  return new Promise((resolve, reject) =>
    client.whoAmI(Buffer.alloc(0), { deadline: Date.now() + callDeadlineMs }, (err, res) => (err ? reject(err) : resolve(res!.toString()))));
}

/** How a call was refused: the gRPC status and the TLS reason grpc-js reports. */
async function refusal(p: Promise<unknown>): Promise<{ code: number; details: string } | "accepted"> {
  return p.then(() => "accepted" as const, (err: grpc.ServiceError) => ({ code: err.code, details: err.details }));
}

const refused = (reason: RegExp) => ({ code: grpc.status.UNAVAILABLE, details: expect.stringMatching(reason) as unknown });

let ca: ClusterCa;
let other: ClusterCa;
let n1: TlsIdentity;
let n2: TlsIdentity;
let stranger: TlsIdentity;

beforeAll(async () => {
  [ca, other] = await Promise.all([createClusterCa({ clusterName: "lab", nowMs: Date.now() }), createClusterCa({ clusterName: "lab", nowMs: Date.now() })]);
  [n1, n2, stranger] = await Promise.all([nodeIdentity(ca, "n1", ["127.0.0.1"]), nodeIdentity(ca, "n2", ["127.0.0.1"]), nodeIdentity(other, "n9", ["127.0.0.1"])]);
});

describe("mutual TLS between nodes", () => {
  it("a member reaches a member at 127.0.0.1 (IP SAN) and is identified by its certificate", async () => {
    const address = await startServer(n1);
    expect(await whoAmI(address, channelCredentials(n2))).toBe("n2");
  });

  it("a client without a certificate is refused", async () => {
    const address = await startServer(n1);
    expect(await refusal(whoAmI(address, bootstrapChannelCredentials(ca.certPem)))).toEqual(refused(/certificate required/));
  });

  it("a client with a certificate from another CA is refused", async () => {
    const address = await startServer(n1);
    expect(await refusal(whoAmI(address, channelCredentials({ ...stranger, caPem: ca.certPem })))).toEqual(refused(/./));
  });

  it("a server from another CA is refused by the client", async () => {
    const address = await startServer({ ...stranger, caPem: ca.certPem });
    expect(await refusal(whoAmI(address, channelCredentials(n2)))).toEqual(refused(/unable to verify/));
  });

  it("a server whose certificate does not name the dialled IP is refused", async () => {
    const elsewhere = await nodeIdentity(ca, "n3", ["10.9.9.9"]);
    const address = await startServer(elsewhere);
    expect(await refusal(whoAmI(address, channelCredentials(n2)))).toEqual(refused(/IP: 127\.0\.0\.1 is not in the cert's list/));
  });
});

describe("bootstrap of a joining node", () => {
  it("fetches the CA only from a server whose chain holds the pinned fingerprint, then talks without a client certificate", async () => {
    const address = await startServer(n1, "request");
    const caPem = await fetchPinnedCa(address, certFingerprint(ca.certPem));
    expect(certFingerprint(caPem)).toBe(certFingerprint(ca.certPem));
    expect(await whoAmI(address, bootstrapChannelCredentials(caPem))).toBe("anonymous");
    // The same port still identifies members by their certificates.
    expect(await whoAmI(address, channelCredentials(n2))).toBe("n2");
    // A certificate from another CA gets no identity there: it counts as no certificate.
    expect(await whoAmI(address, channelCredentials({ ...stranger, caPem: ca.certPem }))).toBe("anonymous");
  });

  it("refuses a server of another cluster (fingerprint mismatch)", async () => {
    const address = await startServer({ ...stranger, caPem: other.certPem }, "request");
    const err = await fetchPinnedCa(address, certFingerprint(ca.certPem)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClusterError);
    expect((err as ClusterError).code).toBe("ca_fingerprint_mismatch");
  });

  it("refuses a server that presents the pinned CA but a certificate it did not issue", async () => {
    const address = await startServer({ ...stranger, caPem: ca.certPem }, "request");
    const err = await fetchPinnedCa(address, certFingerprint(ca.certPem)).catch((e: unknown) => e);
    expect((err as ClusterError).code).toBe("ca_fingerprint_mismatch");
  });

  it("reports an unreachable member as tls_connect", async () => {
    const address = await startServer(n1);
    cleanups.splice(0).forEach((c) => c());
    const err = await fetchPinnedCa(address, certFingerprint(ca.certPem), 2000).catch((e: unknown) => e);
    expect((err as ClusterError).code).toBe("tls_connect");
  });
});

describe("HTTPS API options", () => {
  it("serve the node certificate to a client that trusts the cluster CA and presents none", async () => {
    const server = https.createServer(httpsServerOptions(n1), (_req, res) => res.end("ok"));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => server.close());
    const port = (server.address() as { port: number }).port;
    const body = await new Promise<string>((resolve, reject) => {
      const req = https.get({ host: "127.0.0.1", port, path: "/", ca: ca.certPem, timeout: callDeadlineMs }, (res) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString()));
        res.on("end", () => resolve(text));
      });
      req.on("error", reject);
    });
    expect(body).toBe("ok");
  });
});
