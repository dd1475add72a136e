// Per-chunk digests of a byte range (SHA-256, one per chunk; the last chunk may be short when the
// range ends at the image's end). Used by CHECKSUMS on a brick, on the coordinator's local copy
// for compare-heal, and by verify.
import { createHash } from "node:crypto";
import { protocolLimits } from "./protocol.ts";

export type ReadRange = (offset: number, length: number) => Promise<Buffer>;

/** Digests of [offset, offset+length) in chunkBytes pieces, concatenated (32 bytes each). */
export async function computeChecksums(read: ReadRange, offset: number, length: number, chunkBytes: number): Promise<Buffer> {
  const count = Math.ceil(length / chunkBytes);
  const out = Buffer.allocUnsafe(count * protocolLimits.digestBytes);
  for (let i = 0; i < count; i++) {
    const at = offset + i * chunkBytes;
    const n = Math.min(chunkBytes, offset + length - at);
    const data = await read(at, n);
    createHash("sha256").update(data).digest().copy(out, i * protocolLimits.digestBytes);
  }
  return out;
}

/** The i-th digest of a checksums buffer. */
export function digestAt(digests: Buffer, i: number): Buffer {
  return digests.subarray(i * protocolLimits.digestBytes, (i + 1) * protocolLimits.digestBytes);
}
