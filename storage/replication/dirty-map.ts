// The regions a replica missed, as a bitmap of fixed-size extents (64 KiB by default) over the
// image. Lives in the coordinator's memory; a clean release of the image hands its ranges to the
// next writer through the replicated state, but after a coordinator crash the regions are unknown
// and the replica is compare-healed instead (fullHeal).

export const dirtyExtentBytesDefault = 64 * 1024;

export interface ByteRange {
  offset: number;
  length: number;
}

export class DirtyMap {
  private bits: Uint8Array;
  private count = 0;
  private size: number;

  constructor(
    sizeBytes: number,
    readonly extentBytes: number = dirtyExtentBytesDefault,
  ) {
    if (!Number.isSafeInteger(extentBytes) || extentBytes <= 0) throw new RangeError(`extent size ${extentBytes} must be a positive integer`);
    this.size = sizeBytes;
    this.bits = new Uint8Array(Math.ceil(this.extents(sizeBytes) / 8));
  }

  get sizeBytes(): number {
    return this.size;
  }

  /** Number of dirty extents. */
  get dirtyExtents(): number {
    return this.count;
  }

  /** Bytes covered by dirty extents (the last extent clipped to the image size). */
  get dirtyBytes(): number {
    let total = 0;
    for (const r of this.ranges()) total += r.length;
    return total;
  }

  get isClean(): boolean {
    return this.count === 0;
  }

  /** Marks every extent that [offset, offset+length) touches. */
  mark(offset: number, length: number): void {
    if (length <= 0) return;
    const first = Math.floor(offset / this.extentBytes);
    const last = Math.min(this.extents(this.size), Math.ceil((offset + length) / this.extentBytes)) - 1;
    for (let e = first; e <= last; e++) this.set(e, true);
  }

  markAll(): void {
    this.mark(0, this.size);
  }

  /** Clears the extents that lie wholly inside [offset, offset+length) (or reach the image end). */
  clear(offset: number, length: number): void {
    const first = Math.ceil(offset / this.extentBytes);
    const end = offset + length >= this.size ? this.extents(this.size) : Math.floor((offset + length) / this.extentBytes);
    for (let e = first; e < end; e++) this.set(e, false);
  }

  isDirty(offset: number, length: number): boolean {
    const first = Math.floor(offset / this.extentBytes);
    const last = Math.ceil((offset + length) / this.extentBytes) - 1;
    for (let e = first; e <= last; e++) if (this.get(e)) return true;
    return false;
  }

  /** Makes room for a grown image; the new space is clean. */
  grow(sizeBytes: number): void {
    if (sizeBytes <= this.size) return;
    const bits = new Uint8Array(Math.ceil(this.extents(sizeBytes) / 8));
    bits.set(this.bits);
    this.bits = bits;
    this.size = sizeBytes;
  }

  /**
   * The dirty regions, adjacent extents merged, in ascending order, each at most maxBytes long
   * (a multiple of the extent size) and clipped to the image size.
   */
  *ranges(maxBytes = Number.MAX_SAFE_INTEGER): Generator<ByteRange> {
    const perRange = Math.max(1, Math.floor(maxBytes / this.extentBytes));
    const n = this.extents(this.size);
    let e = 0;
    while (e < n) {
      if (this.bits[e >>> 3] === 0) {
        e = (e | 7) + 1; // skip a clean byte of the bitmap at once
        continue;
      }
      if (!this.get(e)) {
        e++;
        continue;
      }
      const start = e;
      while (e < n && e - start < perRange && this.get(e)) e++;
      const offset = start * this.extentBytes;
      yield { offset, length: Math.min(e * this.extentBytes, this.size) - offset };
    }
  }

  private extents(sizeBytes: number): number {
    return Math.ceil(sizeBytes / this.extentBytes);
  }

  private get(e: number): boolean {
    return ((this.bits[e >>> 3] ?? 0) & (1 << (e & 7))) !== 0;
  }

  private set(e: number, on: boolean): void {
    const i = e >>> 3;
    const mask = 1 << (e & 7);
    const old = this.bits[i] ?? 0;
    if (((old & mask) !== 0) === on) return;
    this.bits[i] = on ? old | mask : old & ~mask;
    this.count += on ? 1 : -1;
  }
}
