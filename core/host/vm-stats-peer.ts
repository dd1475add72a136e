// Live VM figures across nodes: PeerService/VmStats serves this node's latest samples to other
// nodes (only to callers with a cluster node certificate), and LiveStats gathers the samples of
// the nodes a `vm list/get` needs — this node's from its sampler, the others' over the API port
// in parallel, each bounded by statsFetchTimeoutMs. A node that does not answer in time simply
// contributes nothing: its VMs are shown with unknown figures, and the read is never failed or
// held up for long because of it. See vm-stats.ts for why these figures stay out of Raft.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { PeerService, VmStatsRequestSchema, VmStatsResponseSchema } from "../api/gen/trivet/v1/peer_pb.ts";
import { grpcStatusObject } from "../api/server/grpc-adapter.ts";
import type { PeerClients } from "../cluster/peer-clients.ts";
import { requireClusterNode } from "../cluster/peer-clients.ts";
import type { Logger } from "../raft/types.ts";
import type { VmLiveStats } from "./vm-stats.ts";

/** How long a read waits for another node's figures before showing them as unknown. */
export const statsFetchTimeoutMs = 800;

const passthrough = (b: Buffer) => b;
const method = PeerService.method.vmStats;
const path = `/${PeerService.typeName}/${method.name}`;

/** Registers PeerService on the API's gRPC server (before it starts serving). */
export function addPeerStatsService(server: grpc.Server, samples: () => VmLiveStats[]): void {
  const definition: grpc.ServiceDefinition = {
    [method.localName]: { path, requestStream: false, responseStream: false, requestSerialize: passthrough, requestDeserialize: passthrough, responseSerialize: passthrough, responseDeserialize: passthrough },
  };
  const handler: grpc.handleUnaryCall<Buffer, Buffer> = (call, callback) => {
    try {
      requireClusterNode(call, "reading this node's VM figures");
      const vms = samples().map((s) => ({ ...s, memoryRssBytes: BigInt(s.memoryRssBytes), guestMemoryBytes: BigInt(s.guestMemoryBytes), uptimeMs: BigInt(s.uptimeMs), sampledAtMs: BigInt(s.sampledAtMs) }));
      callback(null, Buffer.from(toBinary(VmStatsResponseSchema, create(VmStatsResponseSchema, { vms }))));
    } catch (err) {
      callback(grpcStatusObject(err));
    }
  };
  server.addService(definition, { [method.localName]: handler });
}

/** Asks one node for its samples over its API port, with a deadline. */
export function fetchNodeStats(client: grpc.Client, timeoutMs: number): Promise<VmLiveStats[]> {
  const request = Buffer.from(toBinary(VmStatsRequestSchema, create(VmStatsRequestSchema, {})));
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(path, passthrough, passthrough, request, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
      if (err || !res) return reject(err ?? new Error("empty answer"));
      resolve(fromBinary(VmStatsResponseSchema, res).vms.map((v) => ({
        vmId: v.vmId, cpuPercent: v.cpuPercent, memoryRssBytes: Number(v.memoryRssBytes), guestMemoryBytes: Number(v.guestMemoryBytes), uptimeMs: Number(v.uptimeMs), sampledAtMs: Number(v.sampledAtMs),
      })));
    });
  });
}

export interface LiveStatsOptions {
  selfNodeId: number;
  local: () => VmLiveStats[];
  peers: PeerClients;
  logger: Logger;
  timeoutMs?: number;
}

export class LiveStats {
  constructor(private readonly opts: LiveStatsOptions) {}

  /** The latest figures of the VMs on `nodeIds`, by VM id; nodes that fail or time out are left out. */
  async fetch(nodeIds: Iterable<number>): Promise<Map<string, VmLiveStats>> {
    const out = new Map<string, VmLiveStats>();
    const lists = await Promise.all([...new Set(nodeIds)].map((id) => this.fromNode(id)));
    for (const list of lists) for (const s of list) out.set(s.vmId, s);
    return out;
  }

  private async fromNode(nodeId: number): Promise<VmLiveStats[]> {
    if (nodeId === this.opts.selfNodeId) return this.opts.local();
    const node = this.opts.peers.node(nodeId);
    if (!node) return [];
    try {
      return await fetchNodeStats(this.opts.peers.client(node), this.opts.timeoutMs ?? statsFetchTimeoutMs);
    } catch (err) {
      this.opts.logger.debug("VM figures of a node unavailable", { node: node.name, error: (err as Error).message });
      return [];
    }
  }
}
