// The bounded window of App messages in flight to one follower (pipelining with flow control):
// a ring buffer of the last index (and byte size) of each unacknowledged App. When it is full
// the leader stops sending to that follower until acknowledgements free slots.

export class Inflights {
  private readonly indexes: Float64Array;
  private readonly sizes: Float64Array;
  private start = 0;
  private count = 0;
  private bytes = 0;

  /**
   * @param maxMsgs at most this many App messages in flight
   * @param maxBytes at most this many payload bytes in flight (0 = no byte bound)
   */
  constructor(readonly maxMsgs: number, readonly maxBytes = 0) {
    if (!(maxMsgs >= 1)) throw new RangeError(`inflights window: maxInflightMsgs must be >= 1, got ${maxMsgs}`);
    this.indexes = new Float64Array(maxMsgs);
    this.sizes = new Float64Array(maxMsgs);
  }

  /** Records an App whose last entry is `index`. Indexes must be added in increasing order. */
  add(index: number, bytes: number): void {
    if (this.count === this.maxMsgs) throw new Error("raft invariant: adding to a full inflights window");
    const slot = (this.start + this.count) % this.maxMsgs;
    this.indexes[slot] = index;
    this.sizes[slot] = bytes;
    this.count++;
    this.bytes += bytes;
  }

  /** Frees every in-flight App whose last index is <= `to` (they are acknowledged). */
  freeLE(to: number): void {
    while (this.count > 0 && this.indexes[this.start]! <= to) {
      this.bytes -= this.sizes[this.start]!;
      this.start = (this.start + 1) % this.maxMsgs;
      this.count--;
    }
    if (this.count === 0) this.start = 0;
  }

  /** Frees the oldest slot: lets one App through a full window after a heartbeat answer. */
  freeFirstOne(): void {
    if (this.count > 0) this.freeLE(this.indexes[this.start]!);
  }

  full(): boolean {
    return this.count === this.maxMsgs || (this.maxBytes > 0 && this.bytes >= this.maxBytes);
  }

  size(): number {
    return this.count;
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
    this.bytes = 0;
  }
}
