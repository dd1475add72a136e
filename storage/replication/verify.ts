// Verify: compares per-chunk checksums of one image across its in-sync replicas and reports the
// chunks where they differ. Read-only; run it while writes are quiet, or chunks being written
// may show up as differences.
import { digestAt } from "./checksums.ts";
import { ReplicationError } from "./errors.ts";
import { protocolLimits } from "./protocol.ts";

export const verifyDefaults = {
  chunkBytes: 1024 * 1024,
  windowChunks: 64,
  /** Mismatches listed; past this the report says it was truncated. */
  mismatchesMax: 1000,
} as const;

export interface VerifyReplica {
  nodeId: string;
  checksums(offset: number, length: number, chunkBytes: number): Promise<Buffer>;
}

export interface Mismatch {
  offset: number;
  length: number;
  /** Hex SHA-256 of the chunk on each replica, by node id. */
  digests: Record<string, string>;
}

export interface VerifyReport {
  checkedBytes: number;
  mismatches: Mismatch[];
  truncated: boolean;
}

export interface VerifyOptions {
  imageId: string;
  sizeBytes: number;
  replicas: readonly VerifyReplica[];
  chunkBytes?: number;
  windowChunks?: number;
  mismatchesMax?: number;
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  signal?: AbortSignal;
}

export async function verifyReplicas(o: VerifyOptions): Promise<VerifyReport> {
  const chunk = o.chunkBytes ?? verifyDefaults.chunkBytes;
  const windowBytes = chunk * Math.min(o.windowChunks ?? verifyDefaults.windowChunks, protocolLimits.checksumChunksMax);
  const max = o.mismatchesMax ?? verifyDefaults.mismatchesMax;
  const report: VerifyReport = { checkedBytes: 0, mismatches: [], truncated: false };
  if (o.replicas.length < 2) return { ...report, checkedBytes: o.sizeBytes };
  for (let at = 0; at < o.sizeBytes; at += windowBytes) {
    if (o.signal?.aborted === true) throw new ReplicationError("aborted", `verifying image ${o.imageId}: aborted`);
    const len = Math.min(windowBytes, o.sizeBytes - at);
    const sums = await Promise.all(
      o.replicas.map((r) =>
        r.checksums(at, len, chunk).catch((err: unknown) => {
          throw new ReplicationError("io", `verifying image ${o.imageId}: checksums from node ${r.nodeId} at ${at}: ${(err as Error).message}`, { cause: err });
        }),
      ),
    );
    for (let i = 0; i * chunk < len; i++) {
      const first = digestAt(sums[0]!, i);
      if (sums.every((s) => digestAt(s, i).equals(first))) continue;
      if (report.mismatches.length >= max) {
        report.truncated = true;
        continue;
      }
      const digests: Record<string, string> = {};
      o.replicas.forEach((r, k) => (digests[r.nodeId] = digestAt(sums[k]!, i).toString("hex")));
      report.mismatches.push({ offset: at + i * chunk, length: Math.min(chunk, len - i * chunk), digests });
    }
    report.checkedBytes = at + len;
    o.onProgress?.(report.checkedBytes, o.sizeBytes);
  }
  return report;
}
