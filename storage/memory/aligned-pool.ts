// Page-aligned scratch buffers for O_DIRECT writes. Node's Buffers carry no alignment guarantee
// and O_DIRECT refuses (EINVAL) a user buffer that is not aligned to the device's logical block;
// a WebAssembly.Memory's backing store is mapped whole pages, so slots carved from one at
// multiples of the page size are aligned. The memory is made once at its final size (growing it
// would detach the views handed out), lazily on first use, and shared by every brick file of the
// process; a caller that finds every slot taken waits its turn (FIFO). Received write payloads
// that are large and aligned are read straight into a slot when one is free (payload.ts), so a
// brick file writes them O_DIRECT without a copy (holds()).

export const alignedPoolDefaults = {
  /** One slot holds this much of a write; larger writes take several slots in turn. */
  slotBytes: 1024 * 1024,
  slotsMax: 64,
  /** Writes at least this long (and aligned) are worth writing O_DIRECT, so worth receiving into a slot. */
  directBytesMin: 128 * 1024,
  /** O_DIRECT offsets, lengths and buffers are aligned to this (a page: safe for 512 and 4096 byte sectors). */
  alignBytes: 4096,
} as const;

const wasmPageBytes = 64 * 1024;

/** The project's TypeScript lib has no WebAssembly declarations; Node 20 has the global. */
interface WasmMemoryConstructor {
  new (descriptor: { initial: number; maximum: number }): { buffer: ArrayBuffer };
}
const WasmMemory = (globalThis as unknown as { WebAssembly: { Memory: WasmMemoryConstructor } }).WebAssembly.Memory;

export interface AlignedSlot {
  /** slotBytes of page-aligned memory; valid until release(). */
  readonly buffer: Buffer;
  release(): void;
}

export class AlignedPool {
  private memory: Buffer | null = null;
  private readonly free: number[] = [];
  private readonly waiters: ((index: number) => void)[] = [];

  constructor(
    readonly slotBytes: number = alignedPoolDefaults.slotBytes,
    readonly slotsMax: number = alignedPoolDefaults.slotsMax,
  ) {
    if (slotBytes <= 0 || slotBytes % wasmPageBytes !== 0) throw new RangeError(`aligned pool: slot of ${slotBytes} bytes is not a multiple of ${wasmPageBytes}`);
    if (!Number.isInteger(slotsMax) || slotsMax < 1) throw new RangeError(`aligned pool: ${slotsMax} slots`);
  }

  /** Slots not handed out (all of them before first use). */
  get freeSlots(): number {
    return this.memory === null ? this.slotsMax : this.free.length;
  }

  /** A slot when one is free now, else null (the caller uses other memory). */
  tryAcquire(): AlignedSlot | null {
    const mem = this.memoryOnce();
    const index = this.free.pop();
    return index === undefined ? null : this.slot(mem, index);
  }

  /** Whether buf lies in this pool's memory starting on an alignBytes boundary (so O_DIRECT takes it). */
  holds(buf: Buffer): boolean {
    return this.memory !== null && buf.buffer === this.memory.buffer && buf.byteOffset % alignedPoolDefaults.alignBytes === 0;
  }

  /** A slot now when one is free, else a promise of the next one released. */
  acquire(): AlignedSlot | Promise<AlignedSlot> {
    const mem = this.memoryOnce();
    const index = this.free.pop();
    if (index !== undefined) return this.slot(mem, index);
    return new Promise((resolve) => this.waiters.push((i) => resolve(this.slot(mem, i))));
  }

  private slot(mem: Buffer, index: number): AlignedSlot {
    let released = false;
    return {
      buffer: mem.subarray(index * this.slotBytes, (index + 1) * this.slotBytes),
      release: () => {
        if (released) return;
        released = true;
        const next = this.waiters.shift();
        if (next !== undefined) next(index);
        else this.free.push(index);
      },
    };
  }

  private memoryOnce(): Buffer {
    if (this.memory !== null) return this.memory;
    const pages = (this.slotBytes * this.slotsMax) / wasmPageBytes;
    const mem = new WasmMemory({ initial: pages, maximum: pages });
    this.memory = Buffer.from(mem.buffer);
    for (let i = this.slotsMax - 1; i >= 0; i--) this.free.push(i);
    return this.memory;
  }
}

let shared: AlignedPool | null = null;

/** The process-wide pool the brick files share. */
export function sharedAlignedPool(): AlignedPool {
  shared ??= new AlignedPool();
  return shared;
}
