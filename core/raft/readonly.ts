// ReadIndex bookkeeping at the leader: each read request records the commit index at the time
// it arrived and waits until a quorum of voters answered a heartbeat carrying its context,
// which proves the leader was still the leader when the read arrived (Raft thesis §6.4).

import type { Message, NodeId } from "./types.ts";

export interface ReadIndexStatus {
  req: Message;
  index: number;
  acks: Set<NodeId>;
}

export class ReadOnly {
  private pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  /** Registers a read of `index` for request `req` (whose context identifies it). */
  addRequest(index: number, req: Message): void {
    const key = ctxKey(req.context);
    if (this.pending.has(key)) return;
    this.pending.set(key, { req, index, acks: new Set() });
    this.queue.push(key);
  }

  /** Records that `id` acknowledged the heartbeat with `ctx`; returns how many acked, or 0 if unknown. */
  recvAck(id: NodeId, ctx: Uint8Array | undefined): number {
    const rs = this.pending.get(ctxKey(ctx));
    if (!rs) return 0;
    rs.acks.add(id);
    return rs.acks.size;
  }

  acks(ctx: Uint8Array | undefined): Set<NodeId> | undefined {
    return this.pending.get(ctxKey(ctx))?.acks;
  }

  /** Removes and returns the request with `ctx` and every request queued before it (they are confirmed too). */
  advance(ctx: Uint8Array | undefined): ReadIndexStatus[] {
    const key = ctxKey(ctx);
    const at = this.queue.indexOf(key);
    if (at < 0) return [];
    const done = this.queue.splice(0, at + 1);
    const out: ReadIndexStatus[] = [];
    for (const k of done) {
      const rs = this.pending.get(k);
      if (rs) out.push(rs);
      this.pending.delete(k);
    }
    return out;
  }

  /** Context of the newest pending request (heartbeats carry it so one round confirms all). */
  lastPendingCtx(): Uint8Array | undefined {
    const k = this.queue[this.queue.length - 1];
    return k === undefined ? undefined : this.pending.get(k)?.req.context;
  }

  reset(): void {
    this.pending.clear();
    this.queue = [];
  }
}

function ctxKey(ctx: Uint8Array | undefined): string {
  if (!ctx) return "";
  let s = "";
  for (const b of ctx) s += String.fromCharCode(b);
  return s;
}
