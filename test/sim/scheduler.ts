// The simulator's virtual clock and event queue: every happening (a node's tick, a message
// arriving, a client acting, a fault) is an event at a virtual millisecond, run in
// (time, insertion order) so that one seed always yields the same interleaving. Each event
// folds a label into a trace hash, which is how tests prove that a seed replays identically.

interface Scheduled {
  atMs: number;
  seq: number;
  label: string;
  run: () => void;
}

export class Scheduler {
  private heap: Scheduled[] = [];
  private seq = 0;
  private nowMs = 0;
  private trace = 0x811c9dc5;
  eventsRun = 0;

  get now(): number {
    return this.nowMs;
  }

  /** FNV-1a over every event label run so far and anything else `note`d. */
  get traceHash(): string {
    return (this.trace >>> 0).toString(16).padStart(8, "0");
  }

  at(atMs: number, label: string, run: () => void): void {
    if (atMs < this.nowMs) throw new RangeError(`scheduling ${label} at ${atMs} ms: before now (${this.nowMs} ms)`);
    this.push({ atMs, seq: this.seq++, label, run });
  }

  after(delayMs: number, label: string, run: () => void): void {
    this.at(this.nowMs + delayMs, label, run);
  }

  get pending(): number {
    return this.heap.length;
  }

  /** Runs the earliest event; false when there is none. */
  step(): boolean {
    const ev = this.pop();
    if (ev === undefined) return false;
    this.nowMs = ev.atMs;
    this.eventsRun++;
    this.note(`${ev.atMs}:${ev.label}`);
    ev.run();
    return true;
  }

  note(text: string): void {
    let h = this.trace;
    for (let i = 0; i < text.length; i++) {
      h ^= text.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
    this.trace = h;
  }

  private less(a: Scheduled, b: Scheduled): boolean {
    return a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq);
  }

  private push(ev: Scheduled): void {
    const h = this.heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): Scheduled | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (top === undefined || last === undefined || h.length === 0) return top;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
    return top;
  }
}
