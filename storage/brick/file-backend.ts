// A BlockBackend over one sparse file on a brick: pread/pwrite on a raw descriptor, flush and FUA
// as fdatasync (concurrent ones coalesced). Node has no fallocate(2), so holes are punched by util-linux `fallocate
// --punch-hole` (a process per call: only for large ranges, with bounded concurrency); below that
// size, or when punching is unavailable, WRITE_ZEROES writes zeroes and TRIM (a mere hint in
// NBD) does nothing.
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import type { BlockBackend, WriteOptions, WriteZeroesOptions } from "../nbd/backend.ts";
import { StorageError } from "../nbd/backend.ts";
import { FlushCoalescer } from "./flush-coalescer.ts";

export const fileBackendDefaults = {
  /** Ranges smaller than this are zeroed by writing; a process spawn costs more than that. */
  punchHoleBytesMin: 1024 * 1024,
  punchConcurrencyMax: 2,
  zeroChunkBytes: 1024 * 1024,
  punchTimeoutMs: 30_000,
} as const;

/** Deallocates [offset, offset+length) of the file at path, keeping its size; reads give zeroes. */
export type HolePuncher = (path: string, offset: number, length: number) => Promise<void>;

export const fallocatePunchHole: HolePuncher = (path, offset, length) =>
  new Promise((resolve, reject) => {
    const args = ["--punch-hole", "--offset", String(offset), "--length", String(length), path];
    execFile("fallocate", args, { timeout: fileBackendDefaults.punchTimeoutMs }, (err, _out, stderr) =>
      err === null ? resolve() : reject(new Error(`fallocate --punch-hole: ${String(stderr).trim() || err.message}`, { cause: err })),
    );
  });

export interface FileBackendOptions {
  path: string;
  /** When set, the file is created (sparse) or grown to this size; a larger file is refused. */
  sizeBytes?: number;
  /** null disables hole punching (zero writes only). */
  punchHole?: HolePuncher | null;
  /**
   * Reads and writes up to this size are done with pread/pwrite on the calling thread instead
   * of a libuv pool hop (default 0: never). The hop costs more than a page-cache copy, so this
   * about doubles small-block IOPS, but a read that misses the cache or a write throttled by
   * dirty-page writeback then blocks the thread: only for a thread that serves the data path
   * alone (a worker), never the daemon's main event loop.
   */
  syncIoBytesMax?: number;
}

export class FileBackend implements BlockBackend {
  /** Every connection shares this descriptor and fdatasync covers the whole file. */
  readonly flushCoversAllConnections = true;
  private punchesRunning = 0;
  private punchHole: HolePuncher | null;
  private closed = false;
  private readonly syncs = new FlushCoalescer(() => call((cb) => fs.fdatasync(this.fd, cb), `flushing ${this.path}`));
  private static zeroes: Buffer | null = null;

  private constructor(
    readonly path: string,
    private readonly fd: number,
    readonly sizeBytes: number,
    punchHole: HolePuncher | null,
    private readonly syncIoBytesMax: number,
  ) {
    this.punchHole = punchHole;
  }

  static async open(options: FileBackendOptions): Promise<FileBackend> {
    const flags = fs.constants.O_RDWR | (options.sizeBytes !== undefined ? fs.constants.O_CREAT : 0);
    const fd = await call<number>((cb) => fs.open(options.path, flags, 0o600, cb), `opening brick file ${options.path}`);
    try {
      let st = await call<fs.Stats>((cb) => fs.fstat(fd, cb), `stat of ${options.path}`);
      const want = options.sizeBytes;
      if (want !== undefined && st.size > want) {
        throw new StorageError("invalid_argument", `opening brick file ${options.path}: it holds ${st.size} bytes, more than the ${want} asked for; shrinking is refused`);
      }
      if (want !== undefined && st.size < want) {
        await call((cb) => fs.ftruncate(fd, want, cb), `growing ${options.path} to ${want} bytes`);
        st = await call<fs.Stats>((cb) => fs.fstat(fd, cb), `stat of ${options.path}`);
      }
      const punch = options.punchHole === undefined ? fallocatePunchHole : options.punchHole;
      return new FileBackend(options.path, fd, st.size, punch, options.syncIoBytesMax ?? 0);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }

  async read(offset: number, length: number): Promise<Buffer> {
    this.check(offset, length, "reading");
    const buf = Buffer.allocUnsafe(length);
    const sync = length <= this.syncIoBytesMax;
    let done = 0;
    while (done < length) {
      const at = offset + done;
      const n = sync
        ? syncCall(() => fs.readSync(this.fd, buf, done, length - done, at), `reading ${this.path} at ${at}`)
        : await call<number>((cb) => fs.read(this.fd, buf, done, length - done, at, cb), `reading ${this.path} at ${at}`);
      if (n === 0) {
        buf.fill(0, done); // past the end of a file that shrank under us: reads as zeroes
        break;
      }
      done += n;
    }
    return buf;
  }

  async write(offset: number, data: Buffer, options: WriteOptions): Promise<void> {
    this.check(offset, data.length, "writing");
    const sync = data.length <= this.syncIoBytesMax;
    let done = 0;
    while (done < data.length) {
      const at = offset + done;
      const n = sync
        ? syncCall(() => fs.writeSync(this.fd, data, done, data.length - done, at), `writing ${this.path} at ${at}`)
        : await call<number>((cb) => fs.write(this.fd, data, done, data.length - done, at, cb), `writing ${this.path} at ${at}`);
      if (n <= 0) throw new StorageError("io", `writing ${this.path} at ${at}: the kernel wrote nothing`);
      done += n;
    }
    if (options.fua) await this.flush();
  }

  flush(): Promise<void> {
    if (this.closed) return Promise.reject(new StorageError("closed", `flushing ${this.path}: backend is closed`));
    return this.syncs.flush();
  }

  async trim(offset: number, length: number): Promise<void> {
    this.check(offset, length, "trimming");
    // A trim is advisory: when no punch slot is free (or punching is unsupported) skip it.
    if (length >= fileBackendDefaults.punchHoleBytesMin && this.punchesRunning < fileBackendDefaults.punchConcurrencyMax) {
      await this.tryPunch(offset, length);
    }
  }

  async writeZeroes(offset: number, length: number, options: WriteZeroesOptions): Promise<void> {
    this.check(offset, length, "zeroing");
    const punch =
      !options.noHole && length >= fileBackendDefaults.punchHoleBytesMin && this.punchesRunning < fileBackendDefaults.punchConcurrencyMax;
    if (!(punch && (await this.tryPunch(offset, length)))) await this.writeZeroChunks(offset, length);
    if (options.fua) await this.flush();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await call((cb) => fs.close(this.fd, cb), `closing ${this.path}`);
  }

  private async tryPunch(offset: number, length: number): Promise<boolean> {
    if (this.punchHole === null) return false;
    this.punchesRunning++;
    try {
      await this.punchHole(this.path, offset, length);
      return true;
    } catch {
      this.punchHole = null; // unsupported here (tool missing, file system without holes): stop trying
      return false;
    } finally {
      this.punchesRunning--;
    }
  }

  private async writeZeroChunks(offset: number, length: number): Promise<void> {
    FileBackend.zeroes ??= Buffer.alloc(fileBackendDefaults.zeroChunkBytes);
    const zeroes = FileBackend.zeroes;
    for (let at = offset; at < offset + length; at += zeroes.length) {
      const n = Math.min(zeroes.length, offset + length - at);
      await this.write(at, zeroes.subarray(0, n), { fua: false });
    }
  }

  private check(offset: number, length: number, what: string): void {
    if (this.closed) throw new StorageError("closed", `${what} ${this.path}: backend is closed`);
    if (!Number.isSafeInteger(offset) || offset < 0 || length < 0 || offset + length > this.sizeBytes) {
      throw new StorageError("out_of_range", `${what} ${this.path}: range ${offset}+${length} is outside 0..${this.sizeBytes}`);
    }
  }
}

const noSpaceCodes = new Set(["ENOSPC", "EDQUOT", "EFBIG"]);

function wrapFsError(err: NodeJS.ErrnoException, doing: string): StorageError {
  return new StorageError(noSpaceCodes.has(err.code ?? "") ? "no_space" : "io", `${doing}: ${err.message}`, { cause: err });
}

function syncCall(fn: () => number, doing: string): number {
  try {
    return fn();
  } catch (err) {
    throw wrapFsError(err as NodeJS.ErrnoException, doing);
  }
}

/** Runs a callback-style fs call as a promise, wrapping its error with what was being done. */
function call<T = void>(start: (cb: (err: NodeJS.ErrnoException | null, value?: T) => void) => void, doing: string): Promise<T> {
  return new Promise((resolve, reject) =>
    start((err, value) => {
      if (err === null) resolve(value as T);
      else reject(wrapFsError(err, doing));
    }),
  );
}
