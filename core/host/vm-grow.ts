// Online disk growth, as the host agent reconciles it: a running VM whose volume image is now
// larger in the replicated state than its QEMU has it gets the disk grown in place
// (qemu/disk-grow.ts), level-triggered: the agent compares every tick, acts once per change,
// retries an export that has not grown yet, and reports a refusal in the VM's status (error)
// instead of retrying it on every tick.
import { imageFileBytes } from "../../storage/node/layout.ts";
import type { ImageRecord } from "../../storage/volume/model.ts";
import { isVolumeDisk, type VmRecord } from "../vm/vm-model.ts";
import type { GrowTarget } from "./qemu/disk-grow.ts";
import type { QemuRuntime } from "./qemu/runtime.ts";

/** After a refused grow, the next try (a new size is tried at once). */
export const growRetryMs = 30_000;
/** How long a grow waits for this node's NBD export to serve the new size before it reports an error. */
export const growExportWaitMs = 30_000;

export interface DiskGrowJob {
  diskId: string;
  /** "<volume>/<image>", for messages. */
  image: string;
  target: GrowTarget;
}

/** Per VM: what the agent knows of its QEMU's disk sizes, and how the last grow went. */
export interface GrowState {
  /** Disk id → the guest-visible bytes QEMU was last seen with (absent: not asked yet). */
  knownBytes: Map<string, number>;
  running: boolean;
  error: string | null;
  /** The target that failed, and when: retried after growRetryMs unless the target changes. */
  failed: { key: string; atMs: number } | null;
  waitingSinceMs: number | null;
}

export function newGrowState(): GrowState {
  return { knownBytes: new Map(), running: false, error: null, failed: null, waitingSinceMs: null };
}

/** The volume disks of `vm` whose image is larger than what QEMU was last seen with (pure). */
export function disksToGrow(vm: { spec: Pick<VmRecord["spec"], "disks"> }, image: (volume: string, name: string) => ImageRecord | null, knownBytes: ReadonlyMap<string, number>): DiskGrowJob[] {
  const jobs: DiskGrowJob[] = [];
  for (const d of vm.spec.disks) {
    if (!isVolumeDisk(d)) continue;
    const record = image(d.volume, d.image);
    if (record === null || record.state !== "ready") continue;
    const known = knownBytes.get(d.id);
    if (known !== undefined && known >= record.sizeBytes) continue;
    jobs.push({ diskId: d.id, image: `${d.volume}/${d.image}`, target: { sizeBytes: record.sizeBytes, protocolBytes: imageFileBytes(record) } });
  }
  return jobs;
}

const jobsKey = (jobs: readonly DiskGrowJob[]): string => JSON.stringify(jobs.map((j) => [j.diskId, j.target.sizeBytes]));

/** Whether to start a grow now (pure): nothing under way, and not a target that failed less than growRetryMs ago. */
export function shouldGrow(s: GrowState, jobs: readonly DiskGrowJob[], nowMs: number): boolean {
  if (s.running || jobs.length === 0) return false;
  return s.failed === null || s.failed.key !== jobsKey(jobs) || nowMs - s.failed.atMs >= growRetryMs;
}

/**
 * Grows each disk in turn; records sizes QEMU confirmed, and an error naming the VM, disk and
 * image when QEMU refuses or the export does not grow within growExportWaitMs. Returns whether
 * a disk was grown.
 */
export async function growDisks(vmName: string, rt: Pick<QemuRuntime, "growDisk">, s: GrowState, jobs: readonly DiskGrowJob[], nowMs: () => number): Promise<boolean> {
  let grown = false;
  for (const job of jobs) {
    try {
      const r = await rt.growDisk(job.diskId, job.target);
      if (r.outcome === "export-not-ready") {
        s.waitingSinceMs ??= nowMs();
        if (nowMs() - s.waitingSinceMs < growExportWaitMs) return grown;
        throw new Error(`growing disk ${job.diskId} to ${job.target.sizeBytes} bytes: this node's NBD export still serves the old size after ${growExportWaitMs} ms (see the storage node's log)`);
      }
      s.knownBytes.set(job.diskId, job.target.sizeBytes);
      s.waitingSinceMs = null;
      grown ||= r.outcome === "grown";
    } catch (err) {
      s.error = `VM ${vmName}, image ${job.image}: ${(err as Error).message}; the guest sees the new size after the VM's next start`;
      s.failed = { key: jobsKey(jobs), atMs: nowMs() };
      s.waitingSinceMs = null;
      return grown;
    }
  }
  s.error = null;
  s.failed = null;
  return grown;
}
