// What the node publishes on its event bus, read level-triggered from the local replica: new
// audit log entries (every mutation on any node), node health transitions, leader changes, VM
// state changes and storage changes (images, replicas in and out of sync, heal progress: the
// diff is storage/volume/storage-events.ts).
// A poll of the replica every interval: no event depends on being delivered exactly once, and
// a restarted node simply starts from what its replica holds.
import type { EventBus } from "../api/events/bus.ts";
import { prepared } from "../state/modules.ts";
import type { Replica } from "../state/replica.ts";
import { heartbeatIntervalMsDefault, nodeHealth, type NodeHealth } from "./liveness.ts";
import { listNodeEndpoints } from "./node-module.ts";
import { listVms, listVmStatus } from "../vm/vm-queries.ts";
import { VmEventDiff } from "./vm-events.ts";
import { StorageEventDiff } from "../../storage/volume/storage-events.ts";
import { listImages, listVolumes } from "../../storage/volume/storage-queries.ts";

export const eventPollIntervalMs = 250;
/** Audit rows published per poll at most (a burst is spread over following polls). */
const auditRowsPerPollMax = 500;

interface AuditRow { id: number; atMs: number; principal: string; action: string; object: string; result: string }

export class EventSources {
  private timer?: NodeJS.Timeout;
  private lastAuditId = -1;
  private readonly health = new Map<string, NodeHealth>();
  private leader = -1;
  private readonly vms = new VmEventDiff();
  private readonly storage = new StorageEventDiff();
  private storageIndex = -1;

  constructor(private readonly replica: Replica, private readonly bus: EventBus, private readonly nowMs: () => number = Date.now) {}

  start(): void {
    this.poll();
    this.timer = setInterval(() => this.poll(), eventPollIntervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  poll(): void {
    this.pollAudit();
    this.pollHealth();
    this.pollLeader();
    this.pollVmStates();
    this.pollStorage();
  }

  /** Storage records changed: only read when something was applied, or a heal event is held back. */
  private pollStorage(): void {
    const sm = this.replica.stateMachine;
    if (sm.appliedIndex === this.storageIndex && !this.storage.pending) return;
    const { value, appliedIndex } = sm.read((db) => ({
      images: listImages(db),
      volumeNames: new Map(listVolumes(db).map((v) => [v.id, v.name])),
      nodeNames: new Map(listNodeEndpoints(db).map((n) => [n.nodeId, n.name])),
    }));
    this.storageIndex = appliedIndex;
    for (const e of this.storage.step(value, this.nowMs())) this.bus.publish(e);
  }

  /** A VM's reported state changed (running, paused, stopped, crashed, failed…) or a running VM reports an error. */
  private pollVmStates(): void {
    const { vms, status } = this.replica.stateMachine.read((db) => ({ vms: listVms(db), status: listVmStatus(db) })).value;
    for (const e of this.vms.step(vms, status)) this.bus.publish(e);
  }

  private pollAudit(): void {
    const sm = this.replica.stateMachine;
    if (this.lastAuditId < 0) {
      // Start at the newest entry: the ring is for this node's lifetime, the audit log API for history.
      this.lastAuditId = sm.read((db) => (prepared(db, "SELECT coalesce(max(id), 0) FROM audit_log").pluck().get() as number)).value;
      return;
    }
    const rows = sm.read((db) => prepared(db, "SELECT id, at_ms AS atMs, principal, action, object, result FROM audit_log WHERE id > ? ORDER BY id LIMIT ?").all(this.lastAuditId, auditRowsPerPollMax) as AuditRow[]).value;
    for (const r of rows) {
      this.bus.publish({ kind: "audit", object: r.object, timeMs: r.atMs, message: `${r.principal} ${r.action} ${r.object}: ${r.result}`, fields: { principal: r.principal, action: r.action, result: r.result } });
      this.lastAuditId = r.id;
    }
  }

  private pollHealth(): void {
    const now = this.nowMs();
    for (const n of this.replica.stateMachine.read(listNodeEndpoints).value) {
      const h = nodeHealth(n.heartbeatAtMs, now, heartbeatIntervalMsDefault);
      const before = this.health.get(n.name);
      this.health.set(n.name, h);
      if (before === undefined || before === h) continue;
      this.bus.publish({ kind: "node.health", object: `node/${n.name}`, message: `node ${n.name} is ${h} (was ${before})`, fields: { health: h, previous: before } });
    }
  }

  private pollLeader(): void {
    const { leader, term } = this.replica.host.leaderInfo();
    if (leader === this.leader) return;
    const first = this.leader === -1;
    this.leader = leader;
    if (first) return;
    const name = this.replica.stateMachine.read(listNodeEndpoints).value.find((n) => n.nodeId === leader)?.name ?? String(leader);
    this.bus.publish({ kind: "cluster.leader", object: leader ? `node/${name}` : "cluster", message: leader ? `node ${name} is the leader (term ${term})` : "no leader", fields: { term: String(term), leader: String(leader) } });
  }
}
