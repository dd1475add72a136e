// What the NBD server serves: a block backend (a brick file now, a replicated image later), and
// the typed error the storage layer raises. The server maps errors to NBD errno values.

export interface WriteOptions {
  /** Force unit access: the data is on stable storage before the promise resolves. */
  fua: boolean;
}

export interface WriteZeroesOptions extends WriteOptions {
  /** The client asks that the range stays allocated (no hole may be punched). */
  noHole: boolean;
}

export interface BlockBackend {
  readonly sizeBytes: number;
  /**
   * True when flush() makes every write completed on this backend durable, whichever NBD
   * connection issued it; only then may the server advertise NBD_FLAG_CAN_MULTI_CONN.
   */
  readonly flushCoversAllConnections: boolean;
  /** Advertised to clients as NBD_FLAG_READ_ONLY (a library ISO); writes fail anyway. */
  readonly readOnly?: boolean;
  read(offset: number, length: number): Promise<Buffer>;
  /**
   * data is the caller's again once the returned promise settles (the NBD server reuses it for
   * the next request): a backend copies what it keeps, and does not settle while a send or write
   * of it may still read it.
   */
  write(offset: number, data: Buffer, options: WriteOptions): Promise<void>;
  /** Everything written (and acknowledged) before the call is on stable storage when it resolves. */
  flush(): Promise<void>;
  /** A hint: the range's contents are unspecified afterwards until rewritten. */
  trim(offset: number, length: number): Promise<void>;
  writeZeroes(offset: number, length: number, options: WriteZeroesOptions): Promise<void>;
  /**
   * Optional reference counting by the NBD server: called when a connection enters transmission
   * with this backend, and detach() once that connection's socket has closed. A backend that
   * must open something expensive (a replicated image takes the writer epoch) opens it at the
   * first attach and lets it go at the last detach.
   */
  attach?(): void;
  detach?(): void;
}

export type StorageErrorCode = "out_of_range" | "no_space" | "io" | "invalid_argument" | "closed";

export class StorageError extends Error {
  constructor(
    readonly code: StorageErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "StorageError";
  }
}

/** Maps a backend failure to the errno an NBD client sees (Linux numbering). */
export function errnoOf(err: unknown): number {
  if (err instanceof StorageError) {
    switch (err.code) {
      case "out_of_range":
      case "invalid_argument":
        return 22;
      case "no_space":
        return 28;
      case "closed":
        return 108;
      case "io":
        return 5;
    }
  }
  const code = (err as { code?: unknown } | null)?.code;
  if (code === "ENOSPC" || code === "EDQUOT" || code === "EFBIG") return 28;
  if (code === "EINVAL") return 22;
  if (code === "ENOMEM") return 12;
  return 5;
}
