// Node liveness: every node records a heartbeat in the replicated state at a fixed interval
// (through Raft, so a heartbeat is only recorded while the node can reach a quorum), and the
// health of a node is read from how long ago its last heartbeat was. Proposer-stamped times:
// apply keeps the newest.
import type { Logger } from "../raft/types.ts";
import type { Replica } from "../state/replica.ts";

export const heartbeatIntervalMsDefault = 2000;
/** A node whose last heartbeat is older than this many intervals is reported down. */
export const missedHeartbeatsDown = 3;

export type NodeHealth = "up" | "down" | "unknown";

export function nodeHealth(heartbeatAtMs: number | null, nowMs: number, intervalMs = heartbeatIntervalMsDefault): NodeHealth {
  if (heartbeatAtMs === null) return "unknown";
  return nowMs - heartbeatAtMs <= missedHeartbeatsDown * intervalMs ? "up" : "down";
}

export class Heartbeater {
  private timer?: NodeJS.Timeout;
  private inFlight = false;

  constructor(
    private readonly replica: Replica,
    private readonly nodeId: number,
    private readonly opts: { intervalMs?: number; nowMs?: () => number; logger?: Logger } = {},
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.beat(), this.opts.intervalMs ?? heartbeatIntervalMsDefault);
    void this.beat();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** One heartbeat; skipped while the previous one is still on its way (no quorum: no pile-up). */
  async beat(): Promise<void> {
    if (this.inFlight) return;
    this.inFlight = true;
    try {
      const atMs = Math.floor((this.opts.nowMs ?? Date.now)());
      const r = await this.replica.execute({ type: "node.heartbeat", id: this.nodeId, atMs });
      if (!r.ok) this.opts.logger?.debug("heartbeat not recorded", { node: this.nodeId, reason: r.message });
    } catch (err) {
      this.opts.logger?.debug("heartbeat failed", { node: this.nodeId, error: String(err) });
    } finally {
      this.inFlight = false;
    }
  }
}
