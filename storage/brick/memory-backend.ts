// A BlockBackend held in memory: for tests of the NBD server and of layers above a backend, and
// as the reference implementation the shared backend contract test checks against.
import type { BlockBackend, WriteOptions, WriteZeroesOptions } from "../nbd/backend.ts";
import { StorageError } from "../nbd/backend.ts";

// Methods are async so a bad range rejects the promise like every other backend, never throws.
export class MemoryBackend implements BlockBackend {
  readonly flushCoversAllConnections = true;
  private readonly bytes: Buffer;
  /** Counters a test can assert on. */
  readonly stats = { flushes: 0, fuaWrites: 0, trims: 0 };

  constructor(readonly sizeBytes: number) {
    this.bytes = Buffer.alloc(sizeBytes);
  }

  async read(offset: number, length: number): Promise<Buffer> {
    this.check(offset, length, "reading");
    return Buffer.from(this.bytes.subarray(offset, offset + length));
  }

  async write(offset: number, data: Buffer, options: WriteOptions): Promise<void> {
    this.check(offset, data.length, "writing");
    data.copy(this.bytes, offset);
    if (options.fua) this.stats.fuaWrites++;
  }

  async flush(): Promise<void> {
    this.stats.flushes++;
  }

  async trim(offset: number, length: number): Promise<void> {
    this.check(offset, length, "trimming");
    this.stats.trims++;
  }

  async writeZeroes(offset: number, length: number, options: WriteZeroesOptions): Promise<void> {
    this.check(offset, length, "zeroing");
    this.bytes.fill(0, offset, offset + length);
    if (options.fua) this.stats.fuaWrites++;
  }

  private check(offset: number, length: number, what: string): void {
    if (!Number.isSafeInteger(offset) || offset < 0 || length < 0 || offset + length > this.sizeBytes) {
      throw new StorageError("out_of_range", `${what} memory backend: range ${offset}+${length} is outside 0..${this.sizeBytes}`);
    }
  }
}
