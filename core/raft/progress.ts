// The leader's view of one follower: how far its log matches (match), what to send next (next),
// and the flow-control state:
//   probe     — we do not know where the logs diverge; one App at a time until it is acked;
//   replicate — logs match up to `match`; stream Apps optimistically, bounded by Inflights;
//   snapshot  — a snapshot is on its way; nothing else is sent until it is reported.

import { Inflights } from "./inflights.ts";

export type ProgressState = "probe" | "replicate" | "snapshot";

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = "probe";
  /** Index of the snapshot being sent while in state "snapshot". */
  pendingSnapshot = 0;
  /** Heard from since the last check-quorum round (the leader always counts itself active). */
  recentActive = false;
  /** Probe state: an App was sent and no answer came yet. */
  msgAppFlowPaused = false;
  readonly inflights: Inflights;
  isLearner: boolean;

  constructor(next: number, maxInflightMsgs: number, isLearner: boolean) {
    this.next = next;
    this.inflights = new Inflights(maxInflightMsgs);
    this.isLearner = isLearner;
  }

  private resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === "snapshot") {
      // Resume after the snapshot even if the follower did not say it applied it.
      const pending = this.pendingSnapshot;
      this.resetState("probe");
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState("probe");
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState("replicate");
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState("snapshot");
    this.pendingSnapshot = snapshotIndex;
  }

  /**
   * Bookkeeping after sending an App carrying `entries` entries (`bytes` payload) whose last
   * index is `lastIndex`.
   */
  sentEntries(entries: number, bytes: number, lastIndex: number): void {
    if (this.state === "replicate") {
      if (entries > 0) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex, bytes);
      }
    } else if (this.state === "probe") {
      // Every App in probe state is a probe: wait for its answer (or a heartbeat answer).
      this.msgAppFlowPaused = true;
    } else {
      throw new Error(`raft invariant: sending entries in state ${this.state}`);
    }
  }

  /** The follower acknowledged up to n. Returns false if the ack is stale. */
  maybeUpdate(n: number): boolean {
    if (n <= this.match) return false;
    this.match = n;
    if (this.next < n + 1) this.next = n + 1;
    this.msgAppFlowPaused = false;
    return true;
  }

  /**
   * The follower rejected an App whose preceding index was `rejected`; `matchHint` is where it
   * suggests probing. Returns false if the rejection is stale.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === "replicate") {
      // In replicate state next > match; a rejection of anything at or below match is stale.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // Probe: only the rejection of our latest probe (index next-1) counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.msgAppFlowPaused;
      case "replicate":
        return this.inflights.full();
      case "snapshot":
        return true;
    }
  }

  describe(): string {
    const extra = this.state === "snapshot" ? ` pendingSnap=${this.pendingSnapshot}` : "";
    const paused = this.isPaused() ? " paused" : "";
    const inflight = this.inflights.size() > 0 ? ` inflight=${this.inflights.size()}${this.inflights.full() ? "[full]" : ""}` : "";
    return `${this.state} match=${this.match} next=${this.next}${this.isLearner ? " learner" : ""}${extra}${paused}${inflight}`;
  }
}
