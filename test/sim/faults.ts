// Fault injection for the simulator: crashes (also in the middle of persisting a Ready, and
// rarely of every node at once), process stalls, symmetric and one-way partitions, loss
// spikes, and healing.
// Faults come at random virtual times from the seeded generator; each temporary fault
// schedules its own repair so that the cluster keeps getting chances to make progress.

import type { SimCluster } from "./cluster.ts";
import type { SimRand } from "./rng.ts";
import type { Scheduler } from "./scheduler.ts";

export interface FaultOptions {
  everyMsMin: number;
  everyMsMax: number;
  /** Most nodes down at once through single crashes (a whole-cluster power loss ignores it). */
  downMax: number;
  repairAfterMsMax: number;
  lossSpikeRate: number;
}

export interface FaultStats {
  partitions: number;
  oneWayCuts: number;
  powerLosses: number;
  midPersistCrashes: number;
  pauses: number;
}

export class Faults {
  private stopped = false;
  readonly stats: FaultStats = { partitions: 0, oneWayCuts: 0, powerLosses: 0, midPersistCrashes: 0, pauses: 0 };

  constructor(
    private readonly scheduler: Scheduler,
    private readonly rand: SimRand,
    private readonly cluster: SimCluster,
    private readonly options: FaultOptions,
  ) {}

  start(): void {
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
  }

  private schedule(): void {
    this.scheduler.after(this.rand.range(this.options.everyMsMin, this.options.everyMsMax), "fault", () => {
      if (this.stopped) return;
      this.inject();
      this.schedule();
    });
  }

  private repairLater(label: string, repair: () => void): void {
    this.scheduler.after(this.rand.range(50, this.options.repairAfterMsMax), label, () => {
      if (!this.stopped) repair();
    });
  }

  private inject(): void {
    const r = this.rand.float();
    const c = this.cluster;
    const up = c.nodes.filter((n) => n.up);
    const canCrash = c.downCount() < this.options.downMax && up.length > 0;
    if (r < 0.22) {
      if (canCrash) c.crash(this.rand.pick(up).id);
    } else if (r < 0.32) {
      if (canCrash) {
        this.rand.pick(up).crashDuringNextPersist = true;
        this.stats.midPersistCrashes++;
      }
    } else if (r < 0.34) {
      for (const n of up) c.crash(n.id);
      this.stats.powerLosses++;
    } else if (r < 0.5) {
      const ids = this.rand.shuffle(c.nodes.map((n) => n.id));
      const cut = this.rand.range(1, ids.length - 1);
      c.net.partition([ids.slice(0, cut), ids.slice(cut)]);
      this.stats.partitions++;
      this.repairLater("heal", () => c.net.heal());
    } else if (r < 0.62) {
      const [from, to] = this.rand.shuffle(c.nodes.map((n) => n.id));
      c.net.cutOneWay(from!, to!);
      this.stats.oneWayCuts++;
      this.repairLater("heal", () => c.net.heal());
    } else if (r < 0.67) {
      c.net.setLossRate(this.options.lossSpikeRate);
      this.repairLater("loss reset", () => c.net.resetLossRate());
    } else if (r < 0.75) {
      c.net.heal();
    } else if (r < 0.82) {
      const n = this.rand.pick(c.nodes);
      n.pause();
      this.stats.pauses++;
      // Resumed even after the chaos phase ends: a stall is not a fault that healing undoes.
      this.scheduler.after(this.rand.range(50, this.options.repairAfterMsMax), `resume n${n.id}`, () => n.resume());
    }
  }
}
