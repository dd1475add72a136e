// Group commit for fdatasync: flushes requested while one is under way share the next one, so
// many connections flushing at once cost two syncs, not one each. The next sync starts only
// after the running one ends, because the running one may have begun before a waiting caller's
// writes completed and so would not cover them.

export class FlushCoalescer {
  private running: Promise<void> | null = null;
  private next: Promise<void> | null = null;

  constructor(private readonly sync: () => Promise<void>) {}

  flush(): Promise<void> {
    if (this.running === null) return this.start();
    const after = (): Promise<void> => {
      this.next = null;
      return this.start();
    };
    this.next ??= this.running.then(after, after);
    return this.next;
  }

  private start(): Promise<void> {
    const p: Promise<void> = this.sync().finally(() => {
      if (this.running === p) this.running = null;
    });
    this.running = p;
    return p;
  }
}
