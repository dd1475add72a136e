// The node daemon (`trivet serve`): opens a node's data directory and runs its roles — the
// replicated state (Raft over mutual TLS on the peer port), the API (gRPC with TLS on the API
// port; JSON over HTTPS on the HTTP port, same handlers), liveness heartbeats and, on the
// leader, the membership reconciler. Later areas (engine, host agent, storage) start here too.
import fs from "node:fs";
import { join } from "node:path";
import https from "node:https";
import type net from "node:net";
import * as grpc from "@grpc/grpc-js";
import { serve } from "@hono/node-server";
import { listenGrpc } from "../api/grpc-listen.ts";
import { EventBus } from "../api/events/bus.ts";
import { uiStatic } from "../api/server/ui-static.ts";
import { createApi } from "../api/services/api.ts";
import { consoleTransports, type ConsoleMountOptions } from "../api/console/mount.ts";
import { HostAgent, vmPaths } from "../host/agent.ts";
import { VmStatsSampler } from "../host/vm-stats.ts";
import { addPeerStatsService, LiveStats } from "../host/vm-stats-peer.ts";
import { getVmByName } from "../vm/vm-module.ts";
import { vmService } from "../vm/vm-service.ts";
import { storageServices } from "../../storage/volume/storage-service.ts";
import { StorageNode } from "../../storage/node/storage-node.ts";
import { eventService } from "../api/services/events-service.ts";
import { GrpcTransport } from "../raft/driver/grpc-transport.ts";
import type { Logger, NodeId } from "../raft/types.ts";
import { Replica } from "../state/replica.ts";
import { clusterService } from "./cluster-service.ts";
import { EventSources } from "./event-sources.ts";
import { Heartbeater } from "./liveness.ts";
import { MembershipReconciler } from "./membership.ts";
import { PeerClients } from "./peer-clients.ts";
import { connectReplication, PeerListener } from "./peer-listener.ts";
import { ClusterError } from "./errors.ts";
import { dataLayout, hostOf, readNodeConfig, type NodeConfig } from "./node-config.ts";
import { listNodeEndpoints } from "./node-module.ts";
import { loadOrCreateKek, secretsDir } from "./secrets.ts";
import { channelCredentials, httpsServerOptions, serverCredentials, type TlsIdentity } from "./tls.ts";

const peerSyncIntervalMs = 1000;
const replicationConnectTimeoutMs = 5000;

export interface DaemonOptions {
  dataDir: string;
  logger: Logger;
  /** Members of a brand-new group (init only). */
  initialMembers?: Map<NodeId, string>;
  /** Raft tuning for tests. */
  tickMs?: number;
  /** The node's config when node.json is not written yet (init). */
  config?: NodeConfig;
  /** Run heartbeats and the membership reconciler (default true; init runs without). */
  roles?: boolean;
}

export function readIdentity(dataDir: string): TlsIdentity {
  const l = dataLayout(dataDir);
  return { caPem: fs.readFileSync(l.caCert, "utf8"), certPem: fs.readFileSync(l.nodeCert, "utf8"), keyPem: fs.readFileSync(l.nodeKey, "utf8") };
}

export class Daemon {
  private readonly stops: Array<() => Promise<void> | void> = [];
  replica!: Replica;
  readonly events = new EventBus();
  /** Where a VM's serial/VNC socket is; set by the host agent when it starts (consoles say "not found" until then). */
  consoleResolver?: ConsoleMountOptions["resolveVm"];
  apiPort = 0;
  httpPort = 0;
  private agent?: HostAgent;
  /** CPU, memory and uptime of this node's guests, kept here and served to other nodes (vm-stats.ts). */
  private readonly guestStats = new VmStatsSampler({
    guests: () => this.agent?.runningGuests() ?? [],
    onError: (vm, err) => this.log.debug("VM figures not sampled", { vm, error: err.message }),
  });
  private storage?: StorageNode;
  /** The node-to-node port: Raft (gRPC) and storage replication share it by ALPN. */
  peerListener!: PeerListener;

  private constructor(readonly config: NodeConfig, readonly identity: TlsIdentity, readonly kek: Uint8Array, private readonly log: Logger) {}

  static async start(opts: DaemonOptions): Promise<Daemon> {
    const config = opts.config ?? readNodeConfig(opts.dataDir);
    const identity = readIdentity(opts.dataDir);
    const { kek } = loadOrCreateKek(secretsDir(opts.dataDir));
    const d = new Daemon(config, identity, kek, opts.logger);
    try {
      await d.startReplica(opts);
      await d.startApi();
      if (opts.roles !== false) {
        d.startRoles(opts.dataDir);
        await d.startStorage(opts.dataDir);
      }
    } catch (err) {
      await d.stop();
      throw err;
    }
    opts.logger.info("node started", { node: config.name, nodeId: config.nodeId, api: config.apiAddress, peer: config.peerAddress, https: config.httpAddress });
    return d;
  }

  private async startReplica(opts: DaemonOptions): Promise<void> {
    const peers = new PeerListener({ identity: this.identity, logger: this.log });
    this.peerListener = peers;
    this.stops.push(() => peers.close());
    const transport = new GrpcTransport({
      id: this.config.nodeId,
      listen: this.config.peerAddress,
      bind: (server) => {
        peers.attachGrpc(server);
        return peers.listen(this.config.peerAddress);
      },
      channelCredentials: channelCredentials(this.identity),
    });
    this.replica = await Replica.open({
      id: this.config.nodeId,
      dataDir: dataLayout(opts.dataDir).stateDir,
      transport,
      initialMembers: opts.initialMembers,
      logger: this.log,
      host: opts.tickMs ? { tickMs: opts.tickMs } : undefined,
    });
    this.stops.push(() => this.replica.close());
    this.syncPeerAddresses();
    const timer = setInterval(() => this.syncPeerAddresses(), peerSyncIntervalMs);
    this.stops.push(() => clearInterval(timer));
  }

  /**
   * Raft knows its members' ids but not always where they are (after a restart, or on a node
   * that joined after them): the addresses are in the replicated state. Level-triggered.
   */
  private syncPeerAddresses(): void {
    const known = new Set<number>();
    for (const n of this.nodes()) {
      known.add(n.nodeId);
      if (n.nodeId !== this.config.nodeId) this.replica.host.setPeerAddress(n.nodeId, n.peerAddress);
    }
    for (const p of this.config.seedPeers ?? []) if (!known.has(p.nodeId)) this.replica.host.setPeerAddress(p.nodeId, p.peerAddress);
  }

  private async startApi(): Promise<void> {
    const peers = new PeerClients(this.identity, () => this.nodes());
    this.stops.push(() => peers.close());
    const live = new LiveStats({ selfNodeId: this.config.nodeId, local: () => this.guestStats.snapshot(), peers, logger: this.log });
    const api = createApi({ replica: this.replica, logger: this.log, services: [clusterService(this), eventService(this.events), vmService({ liveStats: (ids) => live.fetch(ids) }), ...storageServices({ verifyImage: (id) => this.verifyImage(id), content: { write: (id, offset, data) => this.storageNode().writeContent(id, offset, data), finish: (id) => this.storageNode().finishContent(id) } })], ui: uiStatic() });
    const server = new grpc.Server({ "grpc.max_receive_message_length": 16 * 1024 * 1024 });
    api.addToGrpcServer(server);
    addPeerStatsService(server, () => this.guestStats.snapshot());
    const consoles = consoleTransports({
      replica: this.replica, logger: this.log, nodeName: this.config.name, resolveVm: (vm, kind) => this.consoleResolver?.(vm, kind),
      nodeClient: (name) => {
        const node = peers.node(name);
        return node && node.nodeId !== this.config.nodeId ? peers.client(node) : undefined;
      },
    });
    consoles.addToGrpcServer(server);
    this.apiPort = await listenGrpc(server, this.config.apiAddress, serverCredentials(this.identity, "request"));
    this.stops.push(() => new Promise<void>((resolve) => server.tryShutdown(() => resolve())));
    const httpServer = serve({
      fetch: api.httpApp.fetch,
      hostname: hostOf(this.config.httpAddress),
      port: Number(/:(\d+)$/.exec(this.config.httpAddress)![1]),
      createServer: https.createServer,
      serverOptions: httpsServerOptions(this.identity),
    });
    await new Promise<void>((resolve, reject) => {
      if (httpServer.listening) return resolve();
      httpServer.once("listening", resolve);
      httpServer.once("error", (err) => reject(new Error(`HTTPS server on ${this.config.httpAddress}: ${err.message}`, { cause: err })));
    });
    this.httpPort = (httpServer.address() as net.AddressInfo).port;
    this.stops.push(() => new Promise<void>((resolve) => httpServer.close(() => resolve())));
    this.stops.push(consoles.attach(httpServer));
  }

  private startRoles(dataDir: string): void {
    const sources = new EventSources(this.replica, this.events);
    sources.start();
    this.stops.push(() => sources.stop());
    const hb = new Heartbeater(this.replica, this.config.nodeId, { logger: this.log });
    hb.start();
    this.stops.push(() => hb.stop());
    const members = new MembershipReconciler(this.replica.host, {
      logger: this.log,
      roles: {
        read: () => this.replica.stateMachine.read(listNodeEndpoints).value,
        set: async (nodeId, role) => {
          const r = await this.replica.execute({ type: "ext", name: "node.set_role", payload: { nodeId, role } });
          if (!r.ok) throw new Error(`node.set_role: ${r.message}`);
        },
      },
    });
    members.start();
    this.stops.push(() => members.stop());
    const agent = new HostAgent({ replica: this.replica, nodeId: this.config.nodeId, dataDir, logger: this.log, volumeExportReady: (name) => this.storage?.hasExport(name) ?? false });
    agent.start();
    this.stops.push(() => agent.stop());
    this.agent = agent;
    this.guestStats.start();
    this.stops.push(() => this.guestStats.stop());
    this.consoleResolver = (vmName, kind) => this.vmConsole(dataDir, vmName, kind);
  }

  /**
   * The volume layer on this node: bricks, the replication server (reached through the peer
   * listener) and the NBD exports that local QEMU and tools use.
   */
  private async startStorage(dataDir: string): Promise<void> {
    const storage = new StorageNode({
      nodeId: this.config.nodeId, dataDir, log: this.log,
      read: (fn) => this.replica.stateMachine.read(fn).value,
      execute: (name, payload) => this.replica.execute({ type: "ext", name, payload }),
      connect: (nodeId) => {
        const node = this.nodes().find((n) => n.nodeId === nodeId);
        if (!node) return Promise.reject(new ClusterError("tls_connect", `replication connection to node ${nodeId}: it is not a member`));
        return connectReplication(this.identity, node.peerAddress, replicationConnectTimeoutMs);
      },
    });
    this.peerListener.onReplication((socket) => storage.serveReplication(socket));
    await storage.start();
    this.storage = storage;
    this.stops.push(() => storage.stop());
  }

  private verifyImage(imageId: string) {
    return this.storageNode().verify(imageId);
  }

  private storageNode(): StorageNode {
    if (!this.storage) throw new ClusterError("not_initialized", "the storage layer of this node is not running");
    return this.storage;
  }

  /** Where a VM's console socket is, from the replicated state (the VM may live on another node). */
  private vmConsole(dataDir: string, vmName: string, kind: "serial" | "vnc") {
    const vm = this.replica.stateMachine.read((db) => getVmByName(db, vmName)).value;
    if (!vm) return undefined;
    // Only a VM with display vnc has a VNC server (its socket is in the run directory).
    if (kind === "vnc" && vm.spec.display !== "vnc") return undefined;
    const node = this.nodes().find((n) => n.nodeId === vm.nodeId)?.name ?? String(vm.nodeId);
    return { socketPath: join(vmPaths(dataDir, vm.id).runDir, kind === "vnc" ? "vnc.sock" : "serial.sock"), node };
  }

  /** Nodes as the local replica knows them. */
  nodes() {
    return this.replica.stateMachine.read(listNodeEndpoints).value;
  }

  async stop(): Promise<void> {
    for (const stop of this.stops.splice(0).reverse()) {
      try {
        await stop();
      } catch (err) {
        this.log.warn("error while stopping", { error: String(err) });
      }
    }
  }
}
