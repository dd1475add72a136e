// The coordinator's own copy of an image, reached in-process through the node's ImageTable —
// the same table (and so the same highest-epoch record) the replication server uses for remote
// coordinators. A coordinator fenced by a newer writer elsewhere therefore cannot touch its own
// brick either: once the new writer has opened this brick at a higher epoch, every local request
// of the old one fails with stale_epoch, as its remote ones do.
import { ReplicationError } from "../replication/errors.ts";
import type { ImageTable, OpenImage } from "../replication/image-table.ts";
import { localChecksums, type ReplicaTarget } from "../replication/replica-target.ts";

export class LocalBrickReplica implements ReplicaTarget {
  private constructor(
    readonly nodeId: string,
    private readonly table: ImageTable,
    private readonly image: OpenImage,
    private readonly epoch: number,
  ) {}

  /** Opens the local copy at `epoch` (refused with stale_epoch if the brick has seen a newer one). */
  static async open(nodeId: string, table: ImageTable, imageId: string, epoch: number, sizeBytes: number): Promise<LocalBrickReplica> {
    const image = await table.acquire(imageId, epoch, sizeBytes);
    return new LocalBrickReplica(nodeId, table, image, epoch);
  }

  private fenced(what: string): void {
    if (this.epoch < this.image.highestEpoch) {
      throw new ReplicationError("stale_epoch", `${what} on the local copy of image ${this.image.imageId}: epoch ${this.epoch} is superseded by ${this.image.highestEpoch}`);
    }
  }

  async write(offset: number, data: Buffer, fua: boolean): Promise<void> {
    this.fenced("write");
    await this.image.backend.write(offset, data, { fua });
  }

  async read(offset: number, length: number): Promise<Buffer> {
    return this.image.backend.read(offset, length);
  }

  async flush(): Promise<void> {
    this.fenced("flush");
    await this.image.backend.flush();
  }

  async trim(offset: number, length: number, fua: boolean): Promise<void> {
    this.fenced("trim");
    await this.image.backend.trim(offset, length);
    if (fua) await this.image.backend.flush();
  }

  async writeZeroes(offset: number, length: number, options: { fua: boolean; noHole: boolean }): Promise<void> {
    this.fenced("write zeroes");
    await this.image.backend.writeZeroes(offset, length, options);
  }

  checksums(offset: number, length: number, chunkBytes: number): Promise<Buffer> {
    return localChecksums(this.nodeId, (o, n) => this.image.backend.read(o, n), offset, length, chunkBytes);
  }

  async grow(sizeBytes: number): Promise<void> {
    this.fenced("grow");
    await this.table.grow(this.image, sizeBytes);
  }

  close(): Promise<void> {
    return this.table.release(this.image);
  }
}
