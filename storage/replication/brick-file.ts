// A brick's image file as the replication layer serves it: a FileBackend (buffered pread/pwrite,
// fdatasync for flush and FUA) plus a second descriptor opened O_DIRECT that takes the large
// aligned writes. Why: three copies of a guest's streaming writes, buffered, fill the page cache
// with dirty pages, and the writing threads are then throttled by the kernel's dirty-page
// balancing; bypassing the cache for those writes costs one copy into aligned memory and keeps
// the cache for reads and small writes. Durability is unchanged: flush and FUA still fdatasync
// the file (which also commits the allocation of blocks a direct write filled), and both
// descriptors are one inode, so a buffered read after a direct write sees it (the kernel writes
// back and drops cached pages of the range a direct write covers). Unaligned or small writes, a
// file system without O_DIRECT, or one that refuses our alignment take the buffered path. Reads
// stay buffered; since directly written data is not cached, small reads leave the calling thread
// for the libuv pool while most of them miss the cache (see BrickFileOptions).
import * as fs from "node:fs";
import type { BlockBackend, WriteOptions, WriteZeroesOptions } from "../nbd/backend.ts";
import { StorageError } from "../nbd/backend.ts";
import { FileBackend, type FileBackendOptions } from "../brick/file-backend.ts";
import { alignedPoolDefaults, sharedAlignedPool, type AlignedPool } from "../memory/aligned-pool.ts";

export const brickFileDefaults = {
  /** Aligned writes at least this long go O_DIRECT (smaller ones are cheaper through the cache). */
  directWriteBytesMin: alignedPoolDefaults.directBytesMin,
  /** A read on the calling thread slower than this missed the page cache (a hit copies in a few µs). */
  readMissUs: 50,
  /** Above this share of misses (moving average) small reads go to the libuv pool, misses in parallel. */
  readMissShareMax: 0.25,
  /** In pool mode, one small read in this many still runs on the calling thread to sample the share. */
  readSampleEvery: 16,
} as const;

/** Weight of the newest sample in the moving average of the miss share. */
const missShareWeight = 1 / 16;

/**
 * syncIoBytesMax (FileBackendOptions) applies to writes, and to reads while they mostly hit the
 * page cache: data written O_DIRECT is not cached, and a read that misses blocks the calling
 * thread for a disk access, so when misses are common small reads go to the libuv pool instead,
 * where several misses wait for the disk at once.
 */
export interface BrickFileOptions extends FileBackendOptions {
  /** 0 disables direct writes; default brickFileDefaults.directWriteBytesMin. */
  directWriteBytesMin?: number;
  pool?: AlignedPool;
  /** Times the calling-thread reads (performance.now by default). */
  nowMs?: () => number;
}

export class BrickFile implements BlockBackend {
  readonly flushCoversAllConnections = true;
  private closed = false;
  private directBytes = 0;
  /** Moving average of the share of sampled calling-thread reads that missed the cache. */
  private missShare = 0;
  private sampleCountdown = 0;

  private constructor(
    private readonly file: FileBackend,
    /** Buffered, for reads: FileBackend's own reads cannot choose the thread per call. */
    private readonly readFd: number,
    /** null when O_DIRECT is unavailable here (or was refused once). */
    private directFd: number | null,
    private readonly directWriteBytesMin: number,
    private readonly syncReadBytesMax: number,
    private readonly pool: AlignedPool,
    private readonly nowMs: () => number,
  ) {}

  static async open(options: BrickFileOptions): Promise<BrickFile> {
    const file = await FileBackend.open(options);
    const min = options.directWriteBytesMin ?? brickFileDefaults.directWriteBytesMin;
    let fd: number | null = null;
    if (min > 0) {
      fd = await new Promise<number | null>((resolve) =>
        fs.open(options.path, fs.constants.O_RDWR | fs.constants.O_DIRECT, (err, d) => resolve(err === null ? d : null)),
      );
    }
    const readFd = await new Promise<number>((resolve, reject) =>
      fs.open(options.path, fs.constants.O_RDONLY, (err, d) => (err === null ? resolve(d) : reject(wrap(err, `opening ${options.path} for reading`)))),
    ).catch(async (err: unknown) => {
      if (fd !== null) fs.closeSync(fd);
      await file.close();
      throw err;
    });
    const pool = options.pool ?? sharedAlignedPool();
    const nowMs = options.nowMs ?? (() => performance.now());
    return new BrickFile(file, readFd, fd, Math.max(min, alignedPoolDefaults.alignBytes), options.syncIoBytesMax ?? 0, pool, nowMs);
  }

  get path(): string {
    return this.file.path;
  }

  get sizeBytes(): number {
    return this.file.sizeBytes;
  }

  /** Whether large aligned writes currently bypass the page cache. */
  get directWrites(): boolean {
    return this.directFd !== null;
  }

  /** Bytes written through the O_DIRECT descriptor so far. */
  get directWrittenBytes(): number {
    return this.directBytes;
  }

  /** The current moving average of cache misses among sampled small reads (0..1). */
  get readMissShare(): number {
    return this.missShare;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    if (this.closed) throw new StorageError("closed", `reading ${this.path}: backend is closed`);
    if (!Number.isSafeInteger(offset) || offset < 0 || length < 0 || offset + length > this.file.sizeBytes) {
      throw new StorageError("out_of_range", `reading ${this.path}: range ${offset}+${length} is outside 0..${this.file.sizeBytes}`);
    }
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    if (length <= this.syncReadBytesMax && this.sampleThisRead()) done = this.readSampled(buf, offset);
    while (done < length) {
      const at = offset + done;
      const n = await pread(this.readFd, buf, done, length - done, at).catch((err: NodeJS.ErrnoException) => {
        throw wrap(err, `reading ${this.path} at ${at}`);
      });
      if (n === 0) {
        buf.fill(0, done); // past the end of a file that shrank under us: reads as zeroes
        break;
      }
      done += n;
    }
    return buf;
  }

  /** Whether this small read runs on the calling thread: always while misses are rare, else a sample. */
  private sampleThisRead(): boolean {
    if (this.missShare <= brickFileDefaults.readMissShareMax) return true;
    if (--this.sampleCountdown > 0) return false;
    this.sampleCountdown = brickFileDefaults.readSampleEvery;
    return true;
  }

  /** One pread on the calling thread, timed to update the miss share; returns the bytes read. */
  private readSampled(buf: Buffer, offset: number): number {
    const start = this.nowMs();
    let n: number;
    try {
      n = fs.readSync(this.readFd, buf, 0, buf.length, offset);
    } catch (err) {
      throw wrap(err as NodeJS.ErrnoException, `reading ${this.path} at ${offset}`);
    }
    const missed = (this.nowMs() - start) * 1000 > brickFileDefaults.readMissUs ? 1 : 0;
    this.missShare += (missed - this.missShare) * missShareWeight;
    if (n === 0) {
      buf.fill(0);
      return buf.length;
    }
    return n;
  }

  async write(offset: number, data: Buffer, options: WriteOptions): Promise<void> {
    const align = alignedPoolDefaults.alignBytes;
    const direct = this.directFd !== null && data.length >= this.directWriteBytesMin && offset % align === 0 && data.length % align === 0;
    if (!direct || !(await this.writeDirect(offset, data))) return this.file.write(offset, data, options);
    if (options.fua) await this.file.flush();
  }

  flush(): Promise<void> {
    return this.file.flush();
  }

  trim(offset: number, length: number): Promise<void> {
    return this.file.trim(offset, length);
  }

  writeZeroes(offset: number, length: number, options: WriteZeroesOptions): Promise<void> {
    return this.file.writeZeroes(offset, length, options);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const fd = this.directFd;
    this.directFd = null;
    if (fd !== null) await new Promise<void>((resolve) => fs.close(fd, () => resolve()));
    await new Promise<void>((resolve) => fs.close(this.readFd, () => resolve()));
    await this.file.close();
  }

  /**
   * Writes data at offset through the O_DIRECT descriptor: from where it is when it already lies
   * in the aligned pool (received there), else copied through one pool slot per piece, pieces in
   * parallel. Returns false (nothing to undo: the caller rewrites it all buffered) when the file
   * system refused the alignment; from then on this file writes buffered only.
   */
  private async writeDirect(offset: number, src: Buffer): Promise<boolean> {
    if (this.closed) throw new StorageError("closed", `writing ${this.path}: backend is closed`);
    if (offset + src.length > this.file.sizeBytes || offset < 0) {
      throw new StorageError("out_of_range", `writing ${this.path}: range ${offset}+${src.length} is outside 0..${this.file.sizeBytes}`);
    }
    if (this.pool.holds(src)) return this.writeAligned(offset, src);
    const step = this.pool.slotBytes;
    const pieces: Promise<boolean>[] = [];
    for (let at = 0; at < src.length; at += step) pieces.push(this.writePiece(offset + at, src, at, Math.min(step, src.length - at)));
    const results = await Promise.all(pieces);
    return results.every((ok) => ok);
  }

  /** Writes src[from, from+length) at offset through a pool slot. */
  private async writePiece(offset: number, src: Buffer, from: number, length: number): Promise<boolean> {
    const acquired = this.pool.acquire();
    const slot = "buffer" in acquired ? acquired : await acquired;
    try {
      if (this.directFd === null || this.closed) return false;
      src.copy(slot.buffer, 0, from, from + length);
      return await this.writeAligned(offset, slot.buffer.subarray(0, length));
    } finally {
      slot.release();
    }
  }

  /** Writes piece (page-aligned memory) at offset through the O_DIRECT descriptor; false when it was refused. */
  private async writeAligned(offset: number, piece: Buffer): Promise<boolean> {
    const fd = this.directFd;
    if (fd === null || this.closed) return false;
    let done = 0;
    while (done < piece.length) {
      const at = offset + done;
      const n = await pwrite(fd, piece, done, piece.length - done, at).catch((err: NodeJS.ErrnoException) => {
        if (err.code === "EINVAL" && done === 0) return -1;
        throw wrap(err, `writing ${this.path} at ${at} (direct)`);
      });
      if (n < 0) {
        if (this.directFd === fd) {
          this.directFd = null; // refused alignment: buffered from now on (the descriptor closes with the file)
          void new Promise<void>((resolve) => fs.close(fd, () => resolve()));
        }
        return false;
      }
      if (n === 0) throw new StorageError("io", `writing ${this.path} at ${at} (direct): the kernel wrote nothing`);
      // A short direct write leaves an aligned remainder only if n is aligned; else finish buffered.
      if (n % alignedPoolDefaults.alignBytes !== 0) {
        await this.file.write(at + n, piece.subarray(done + n), { fua: false });
        return true;
      }
      done += n;
      this.directBytes += n;
    }
    return true;
  }
}

function pread(fd: number, buf: Buffer, from: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => fs.read(fd, buf, from, length, position, (err, n) => (err === null ? resolve(n) : reject(err))));
}

function pwrite(fd: number, buf: Buffer, from: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => fs.write(fd, buf, from, length, position, (err, n) => (err === null ? resolve(n) : reject(err))));
}

const noSpaceCodes = new Set(["ENOSPC", "EDQUOT", "EFBIG"]);

function wrap(err: NodeJS.ErrnoException, doing: string): StorageError {
  return new StorageError(noSpaceCodes.has(err.code ?? "") ? "no_space" : "io", `${doing}: ${err.message}`, { cause: err });
}
