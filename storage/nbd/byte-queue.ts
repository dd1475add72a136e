// A FIFO of received socket chunks from which fixed-size messages are taken. Taking bytes that
// lie inside one chunk returns a view (no copy): write payloads reach the backend as received.

export class ByteQueue {
  private chunks: Buffer[] = [];
  private head = 0; // bytes of chunks[0] already consumed
  private total = 0;

  get length(): number {
    return this.total;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** Removes and returns the next n bytes; the caller checks `length` first. */
  take(n: number): Buffer {
    if (n > this.total) throw new RangeError(`ByteQueue.take(${n}) with only ${this.total} bytes queued`);
    this.total -= n;
    const first = this.chunks[0];
    if (first !== undefined && first.length - this.head >= n) {
      const out = first.subarray(this.head, this.head + n);
      this.advance(first, n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0];
      if (c === undefined) throw new RangeError("ByteQueue underflow");
      const count = Math.min(c.length - this.head, n - filled);
      c.copy(out, filled, this.head, this.head + count);
      filled += count;
      this.advance(c, count);
    }
    return out;
  }

  private advance(chunk: Buffer, n: number): void {
    this.head += n;
    if (this.head === chunk.length) {
      this.chunks.shift();
      this.head = 0;
    }
  }
}
