// gRPC clients from this node to the other nodes' API ports, authenticated with this node's
// certificate (mutual TLS against the cluster CA), for node-to-node calls that are not Raft:
// live VM figures (PeerService) and consoles proxied to the node a VM runs on. The API port
// asks clients for a certificate without requiring one (users come without); handlers of these
// calls accept only a peer whose certificate verified against the CA (requireClusterNode).
import * as grpc from "@grpc/grpc-js";
import { ApiError } from "../api/server/errors.ts";
import type { NodeEndpoints } from "./node-module.ts";
import { channelCredentials, peerNodeName, type TlsIdentity } from "./tls.ts";

/** Clients kept at once; an address change (a node re-joined elsewhere) replaces its client. */
export const peerClientsMax = 64;

export class PeerClients {
  private readonly clients = new Map<number, { address: string; client: grpc.Client }>();
  private readonly credentials: grpc.ChannelCredentials;

  constructor(identity: TlsIdentity, private readonly nodes: () => NodeEndpoints[]) {
    this.credentials = channelCredentials(identity);
  }

  /** The node's endpoints by id or name; undefined when the local replica does not know it. */
  node(which: number | string): NodeEndpoints | undefined {
    return this.nodes().find((n) => (typeof which === "number" ? n.nodeId === which : n.name === which));
  }

  /** A client for the API port of `node` (reused between calls). */
  client(node: NodeEndpoints): grpc.Client {
    const held = this.clients.get(node.nodeId);
    if (held?.address === node.apiAddress) return held.client;
    held?.client.close();
    if (!held && this.clients.size >= peerClientsMax) {
      const [oldest] = this.clients.keys();
      this.clients.get(oldest!)?.client.close();
      this.clients.delete(oldest!);
    }
    const client = new grpc.Client(node.apiAddress, this.credentials);
    this.clients.set(node.nodeId, { address: node.apiAddress, client });
    return client;
  }

  close(): void {
    for (const { client } of this.clients.values()) client.close();
    this.clients.clear();
  }
}

/** The calling node's name; refuses a caller without a cluster node certificate. */
export function requireClusterNode(call: Parameters<typeof peerNodeName>[0], what: string): string {
  const node = peerNodeName(call);
  if (node === null) throw new ApiError("permission_denied", `${what}: only cluster nodes may call this (no verified node certificate)`, { reason: "not_a_node" });
  return node;
}
