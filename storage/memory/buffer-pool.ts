// Reusable buffers for received request payloads. A payload copied out of a socket's static read
// buffer (static-read.ts) needs memory that outlives the read; taking it from this pool, rather
// than allocating, is what keeps V8's external-memory count flat while a guest streams writes.
// Buffers come in power-of-two classes; a released one goes back to its class's free list while
// the pool keeps at most retainedBytesMax, and otherwise is left to the garbage collector.
//
// Ownership: a lease's buffer is the holder's until release(); it must not be read or written
// after that (the next lease gets the same memory). Releasing twice is harmless.

export const bufferPoolDefaults = {
  /** Smallest class: payloads below this share it. */
  classBytesMin: 4 * 1024,
  /** Larger payloads are allocated and dropped, not pooled. */
  classBytesMax: 32 * 1024 * 1024,
  /** Free buffers kept for reuse, all classes together. */
  retainedBytesMax: 64 * 1024 * 1024,
} as const;

export interface Lease {
  /** Exactly the requested length (a view of a class-sized buffer). */
  readonly buffer: Buffer;
  release(): void;
}

export interface BufferPoolOptions {
  classBytesMin?: number;
  classBytesMax?: number;
  retainedBytesMax?: number;
}

export class BufferPool {
  private readonly free = new Map<number, Buffer[]>();
  private retained = 0;
  private readonly o: Required<BufferPoolOptions>;
  /** Leases served from a free list / newly allocated: for tests and diagnostics. */
  reused = 0;
  allocated = 0;

  constructor(options: BufferPoolOptions = {}) {
    this.o = { ...bufferPoolDefaults, ...options };
    const { classBytesMin: min, classBytesMax: max } = this.o;
    if (!isPowerOfTwo(min) || !isPowerOfTwo(max) || min > max) throw new RangeError(`buffer pool: classes ${min}..${max} must be powers of two, smallest first`);
  }

  /** Bytes held in free lists. */
  get retainedBytes(): number {
    return this.retained;
  }

  lease(bytes: number): Lease {
    if (!Number.isInteger(bytes) || bytes < 0) throw new RangeError(`buffer pool: lease of ${bytes} bytes`);
    const size = this.classOf(bytes);
    if (size === null) {
      this.allocated++;
      return { buffer: Buffer.allocUnsafeSlow(bytes), release: () => undefined };
    }
    const list = this.free.get(size);
    let whole = list?.pop();
    if (whole !== undefined) {
      this.retained -= size;
      this.reused++;
    } else {
      whole = Buffer.allocUnsafeSlow(size);
      this.allocated++;
    }
    const buf = whole;
    let released = false;
    return {
      buffer: buf.subarray(0, bytes),
      release: () => {
        if (released) return;
        released = true;
        this.giveBack(size, buf);
      },
    };
  }

  private giveBack(size: number, buf: Buffer): void {
    if (this.retained + size > this.o.retainedBytesMax) return;
    let list = this.free.get(size);
    if (list === undefined) this.free.set(size, (list = []));
    list.push(buf);
    this.retained += size;
  }

  /** The class size for a payload, or null when it is too large to pool. */
  private classOf(bytes: number): number | null {
    if (bytes > this.o.classBytesMax) return null;
    let size = this.o.classBytesMin;
    while (size < bytes) size *= 2;
    return size;
  }
}

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

let shared: BufferPool | null = null;

/** The process-wide pool the NBD server and the brick side of replication share. */
export function sharedBufferPool(): BufferPool {
  shared ??= new BufferPool();
  return shared;
}
