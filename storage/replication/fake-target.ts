// A ReplicaTarget in memory for tests: scripted failures (by error code) and held writes, so
// tests can drive the replicated backend through failures without sockets or disks.
import { computeChecksums } from "./checksums.ts";
import { ReplicationError } from "./errors.ts";
import type { ReplicationErrorCode } from "./errors.ts";
import type { ReplicaTarget } from "./replica-target.ts";

export class FakeTarget implements ReplicaTarget {
  bytes: Buffer;
  /** When set, every request fails with this code. */
  failWith: ReplicationErrorCode | null = null;
  readonly stats = { writes: 0, flushes: 0, reads: 0, writtenBytes: 0 };
  private held: (() => void)[] | null = null;

  constructor(
    readonly nodeId: string,
    sizeBytes: number,
  ) {
    this.bytes = Buffer.alloc(sizeBytes);
  }

  /** Writes wait until release() while held. */
  hold(): void {
    this.held ??= [];
  }

  release(): void {
    const h = this.held ?? [];
    this.held = null;
    for (const w of h) w();
  }

  async write(offset: number, data: Buffer): Promise<void> {
    if (this.held !== null) await new Promise<void>((resolve) => this.held!.push(resolve));
    this.fail("writing");
    data.copy(this.bytes, offset);
    this.stats.writes++;
    this.stats.writtenBytes += data.length;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    this.fail("reading");
    this.stats.reads++;
    return Buffer.from(this.bytes.subarray(offset, offset + length));
  }

  async flush(): Promise<void> {
    this.fail("flushing");
    this.stats.flushes++;
  }

  async trim(): Promise<void> {
    this.fail("trimming");
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    this.fail("zeroing");
    this.bytes.fill(0, offset, offset + length);
  }

  async checksums(offset: number, length: number, chunkBytes: number): Promise<Buffer> {
    this.fail("checksumming");
    return computeChecksums(async (o, n) => this.bytes.subarray(o, o + n), offset, length, chunkBytes);
  }

  async grow(sizeBytes: number): Promise<void> {
    this.fail("growing");
    if (sizeBytes > this.bytes.length) this.bytes = Buffer.concat([this.bytes, Buffer.alloc(sizeBytes - this.bytes.length)]);
  }

  async close(): Promise<void> {}

  private fail(what: string): void {
    if (this.failWith !== null) throw new ReplicationError(this.failWith, `${what} on fake node ${this.nodeId}: scripted ${this.failWith}`);
  }
}
