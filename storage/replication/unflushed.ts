// Regions written since the last flush that every replica completed. A replica that fails may
// lose those from its page cache (a crashed node) even though it acknowledged them, so they join
// its dirty map too. Extents are kept in sets, bounded: past unflushedExtentsMax the regions
// count as unknown and a failing replica needs a compare heal instead.
import type { DirtyMap } from "./dirty-map.ts";

export const unflushedExtentsMaxDefault = 256 * 1024;

export class UnflushedRegions {
  private current = new Set<number>();
  private currentOverflow = false;
  /** Snapshots taken by flushes still under way: their writes are not yet known durable. */
  private readonly inFlush = new Set<{ extents: Set<number>; overflow: boolean }>();

  constructor(
    private readonly extentBytes: number,
    private readonly extentsMax: number = unflushedExtentsMaxDefault,
  ) {}

  note(offset: number, length: number): void {
    if (this.currentOverflow || length <= 0) return;
    const last = Math.floor((offset + length - 1) / this.extentBytes);
    for (let e = Math.floor(offset / this.extentBytes); e <= last; e++) this.current.add(e);
    if (this.current.size > this.extentsMax) {
      this.currentOverflow = true;
      this.current.clear();
    }
  }

  /** Starts covering a flush: returns the function to call once it succeeded on every replica. */
  beginFlush(): () => void {
    const snap = { extents: this.current, overflow: this.currentOverflow };
    this.current = new Set();
    this.currentOverflow = false;
    this.inFlush.add(snap);
    return () => this.inFlush.delete(snap);
  }

  /** Adds every possibly-unflushed region to dirty; false when they are unknown (overflowed). */
  addTo(dirty: DirtyMap): boolean {
    let known = !this.currentOverflow;
    const add = (extents: Set<number>): void => {
      for (const e of extents) dirty.mark(e * this.extentBytes, this.extentBytes);
    };
    add(this.current);
    for (const s of this.inFlush) {
      if (s.overflow) known = false;
      add(s.extents);
    }
    return known;
  }
}
