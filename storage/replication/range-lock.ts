// Exclusive locks on byte ranges, granted in request order: a request waits only for earlier
// requests whose ranges overlap its own. The coordinator holds one across a replicated write
// (so overlapping writes reach every replica in the same order) and across each heal copy (so
// a heal never writes stale data over a newer guest write on the healing replica).

interface Entry {
  start: number;
  end: number;
  granted: boolean;
  grant: (() => void) | null;
}

export type Release = () => void;

export class RangeLock {
  private readonly entries: Entry[] = [];
  private waiting = 0;

  get held(): number {
    return this.entries.length - this.waiting;
  }

  /**
   * Returns the release function at once when nothing earlier overlaps (the common case, without
   * a promise), else a promise of it.
   */
  acquire(offset: number, length: number): Release | Promise<Release> {
    const entry: Entry = { start: offset, end: offset + Math.max(length, 1), granted: false, grant: null };
    const blocked = this.blockedBefore(entry, this.entries.length);
    this.entries.push(entry);
    const release = (): void => this.release(entry);
    if (!blocked) {
      entry.granted = true;
      return release;
    }
    this.waiting++;
    return new Promise<Release>((resolve) => (entry.grant = () => resolve(release)));
  }

  private release(entry: Entry): void {
    const i = this.entries.indexOf(entry);
    if (i < 0) return;
    this.entries.splice(i, 1);
    if (this.waiting === 0) return;
    for (let j = 0; j < this.entries.length; j++) {
      const e = this.entries[j]!;
      if (e.granted || this.blockedBefore(e, j)) continue;
      e.granted = true;
      this.waiting--;
      e.grant?.();
    }
  }

  private blockedBefore(entry: Entry, count: number): boolean {
    for (let j = 0; j < count; j++) {
      const e = this.entries[j]!;
      if (e.start < entry.end && entry.start < e.end) return true;
    }
    return false;
  }
}
