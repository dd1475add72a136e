// Simulated network between Raft nodes: every message gets a random delay in virtual ms (so
// messages overtake each other), may be lost or duplicated, and is dropped when its link is cut
// by a partition (symmetric or one-way) or when its recipient is down at arrival. All choices
// come from the seeded generator, so a seed replays the same deliveries. Messages travel
// through the real wire codec: nodes never share objects, as they would not on a real network.

import { decodeBatch, encodeBatch } from "../../core/raft/driver/codec.ts";
import { MessageType, type Message, type NodeId } from "../../core/raft/types.ts";
import type { SimRand } from "./rng.ts";
import type { Scheduler } from "./scheduler.ts";

export interface NetworkOptions {
  delayMinMs: number;
  delayMaxMs: number;
  /** Chance that a message takes the slow path (up to slowDelayMaxMs): strong reordering. */
  slowChance: number;
  slowDelayMaxMs: number;
  /** Chance of a very late message (up to lateDelayMaxMs), arriving terms after it was sent. */
  lateChance: number;
  lateDelayMaxMs: number;
  lossRate: number;
  duplicateRate: number;
}

export const defaultNetworkOptions: NetworkOptions = {
  delayMinMs: 1,
  delayMaxMs: 15,
  slowChance: 0.03,
  slowDelayMaxMs: 150,
  lateChance: 0.005,
  lateDelayMaxMs: 3000,
  lossRate: 0.02,
  duplicateRate: 0.02,
};

export interface NetworkHooks {
  deliver(m: Message): void;
  isUp(id: NodeId): boolean;
  /** A snapshot message reached its recipient (true) or was lost (false): the sender's transport would know. */
  snapshotStatus(from: NodeId, to: NodeId, ok: boolean): void;
  /** The link to `to` is cut or `to` is down: a real transport would see the connection fail. */
  unreachable(from: NodeId, to: NodeId): void;
}

export interface NetworkStats {
  sent: number;
  delivered: number;
  dropped: number;
  duplicated: number;
}

export class SimNetwork {
  private readonly cut = new Set<string>();
  readonly stats: NetworkStats = { sent: 0, delivered: 0, dropped: 0, duplicated: 0 };
  private lossRate: number;

  constructor(
    private readonly rand: SimRand,
    private readonly scheduler: Scheduler,
    private readonly hooks: NetworkHooks,
    private readonly options: NetworkOptions = defaultNetworkOptions,
  ) {
    this.lossRate = options.lossRate;
  }

  send(m: Message): void {
    this.stats.sent++;
    const frame = encodeBatch([m]);
    const copies = this.rand.chance(this.options.duplicateRate) ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    for (let i = 0; i < copies; i++) {
      if (this.rand.chance(this.lossRate)) {
        this.drop(m);
        continue;
      }
      const delayMs = this.delayMs();
      this.scheduler.after(delayMs, `net ${m.from}->${m.to} t${m.type}`, () => this.arrive(m, frame));
    }
  }

  /** Cuts every link between different groups, both ways. Nodes in no group keep their links. */
  partition(groups: NodeId[][]): void {
    for (const [gi, a] of groups.entries()) {
      for (const [gj, b] of groups.entries()) {
        if (gi === gj) continue;
        for (const x of a) for (const y of b) this.cut.add(link(x, y));
      }
    }
  }

  /** Cuts only the direction from → to (to can still reach from). */
  cutOneWay(from: NodeId, to: NodeId): void {
    this.cut.add(link(from, to));
  }

  heal(): void {
    this.cut.clear();
  }

  setLossRate(rate: number): void {
    this.lossRate = rate;
  }

  resetLossRate(): void {
    this.lossRate = this.options.lossRate;
  }

  get isPartitioned(): boolean {
    return this.cut.size > 0;
  }

  connected(from: NodeId, to: NodeId): boolean {
    return !this.cut.has(link(from, to));
  }

  describe(): string {
    return [...this.cut].sort().join(",");
  }

  private delayMs(): number {
    const o = this.options;
    if (this.rand.chance(o.lateChance)) return this.rand.range(o.slowDelayMaxMs, o.lateDelayMaxMs);
    if (this.rand.chance(o.slowChance)) return this.rand.range(o.delayMaxMs, o.slowDelayMaxMs);
    return this.rand.range(o.delayMinMs, o.delayMaxMs);
  }

  private arrive(m: Message, frame: Uint8Array): void {
    // Checked on arrival, not on sending: a partition also eats what is already on the wire.
    if (!this.connected(m.from, m.to) || !this.hooks.isUp(m.to)) {
      this.drop(m);
      this.hooks.unreachable(m.from, m.to);
      return;
    }
    this.stats.delivered++;
    const decoded = decodeBatch(frame);
    if (decoded.length !== 1) throw new Error(`delivering message ${m.from}->${m.to}: frame decoded to ${decoded.length} messages`);
    this.hooks.deliver(decoded[0]!);
    if (m.type === MessageType.Snap) this.hooks.snapshotStatus(m.from, m.to, true);
  }

  private drop(m: Message): void {
    this.stats.dropped++;
    if (m.type === MessageType.Snap) this.hooks.snapshotStatus(m.from, m.to, false);
  }
}

function link(from: NodeId, to: NodeId): string {
  return `${from}>${to}`;
}
