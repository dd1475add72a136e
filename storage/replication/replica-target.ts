// One copy of an image as the coordinator sees it: the local brick file or a remote brick over a
// ReplicaClient (which has this shape already). LocalReplica adapts a brick file.
import type { BlockBackend } from "../nbd/backend.ts";
import { computeChecksums } from "./checksums.ts";
import { ReplicationError } from "./errors.ts";
import { checkChecksumsRequest } from "./protocol.ts";

export interface ReplicaTarget {
  readonly nodeId: string;
  write(offset: number, data: Buffer, fua: boolean): Promise<void>;
  read(offset: number, length: number): Promise<Buffer>;
  flush(): Promise<void>;
  trim(offset: number, length: number, fua: boolean): Promise<void>;
  writeZeroes(offset: number, length: number, options: { fua: boolean; noHole: boolean }): Promise<void>;
  /** SHA-256 per chunk of [offset, offset+length), 32 bytes each. */
  checksums(offset: number, length: number, chunkBytes: number): Promise<Buffer>;
  grow(sizeBytes: number): Promise<void>;
  close(): Promise<void>;
}

export interface ClosableBackend extends BlockBackend {
  close(): Promise<void>;
}

export interface LocalReplicaOptions {
  nodeId: string;
  backend: ClosableBackend;
  /** Opens the same file grown to sizeBytes (FileBackend.open with sizeBytes); without it grow fails. */
  reopen?: (sizeBytes: number) => Promise<ClosableBackend>;
}

export class LocalReplica implements ReplicaTarget {
  readonly nodeId: string;
  private backend: ClosableBackend;
  /** Replaced by grow(); requests may still run on them, so they close with this replica. */
  private readonly retired: ClosableBackend[] = [];

  constructor(private readonly options: LocalReplicaOptions) {
    this.nodeId = options.nodeId;
    this.backend = options.backend;
  }

  get sizeBytes(): number {
    return this.backend.sizeBytes;
  }

  write(offset: number, data: Buffer, fua: boolean): Promise<void> {
    return this.backend.write(offset, data, { fua });
  }

  read(offset: number, length: number): Promise<Buffer> {
    return this.backend.read(offset, length);
  }

  flush(): Promise<void> {
    return this.backend.flush();
  }

  async trim(offset: number, length: number, fua: boolean): Promise<void> {
    await this.backend.trim(offset, length);
    if (fua) await this.backend.flush();
  }

  writeZeroes(offset: number, length: number, options: { fua: boolean; noHole: boolean }): Promise<void> {
    return this.backend.writeZeroes(offset, length, options);
  }

  checksums(offset: number, length: number, chunkBytes: number): Promise<Buffer> {
    return localChecksums(this.nodeId, (o, n) => this.backend.read(o, n), offset, length, chunkBytes);
  }

  async grow(sizeBytes: number): Promise<void> {
    if (sizeBytes <= this.backend.sizeBytes) return;
    if (this.options.reopen === undefined) throw new ReplicationError("invalid_argument", `growing the local copy on node ${this.nodeId}: no reopen given`);
    const grown = await this.options.reopen(sizeBytes);
    this.retired.push(this.backend);
    this.backend = grown;
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.backend, ...this.retired].map((b) => b.close()));
  }
}

/** CHECKSUMS of a copy on this node, with the same request checks a brick server applies. */
export function localChecksums(nodeId: string, read: (offset: number, length: number) => Promise<Buffer>, offset: number, length: number, chunkBytes: number): Promise<Buffer> {
  const invalid = checkChecksumsRequest(length, chunkBytes);
  if (invalid !== null) return Promise.reject(new ReplicationError("invalid_argument", `checksums on node ${nodeId}: ${invalid}`));
  return computeChecksums(read, offset, length, chunkBytes);
}
