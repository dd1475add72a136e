// Where a received write payload is put: large aligned writes into a free slot of the aligned
// pool (so the brick file writes them O_DIRECT from there, no copy), everything else, and large
// writes when no slot is free, into the buffer pool. Either way the memory is leased: the
// receiver releases it once the write has settled.
import { alignedPoolDefaults, sharedAlignedPool, type AlignedPool } from "./aligned-pool.ts";
import { sharedBufferPool, type BufferPool, type Lease } from "./buffer-pool.ts";

export type LeasePayload = (bytes: number, offset: number) => Lease;

/** offset: the write's byte offset in the image (alignment of the data on disk). */
export function payloadAllocator(pool: BufferPool = sharedBufferPool(), aligned: AlignedPool = sharedAlignedPool()): LeasePayload {
  const align = alignedPoolDefaults.alignBytes;
  return (bytes, offset) => {
    if (bytes >= alignedPoolDefaults.directBytesMin && bytes <= aligned.slotBytes && bytes % align === 0 && offset % align === 0) {
      const slot = aligned.tryAcquire();
      if (slot !== null) return { buffer: slot.buffer.subarray(0, bytes), release: () => slot.release() };
    }
    return pool.lease(bytes);
  };
}

let shared: LeasePayload | null = null;

/** The process-wide allocator over the shared pools. */
export function sharedPayloadAllocator(): LeasePayload {
  shared ??= payloadAllocator();
  return shared;
}
