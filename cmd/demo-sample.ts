// The demo's sample VM, through the API like any client: a replicated volume "demo" (a brick on
// each of the three nodes), a 64 MiB raw disk image on it, and the VM "sample" booting the demo
// guest's kernel with that disk, a user-mode NIC and a serial console. Whatever already exists
// (a demo restarted with the same --data-dir) is reused. Starting waits, bounded, until the host
// agent reports the VM running, and returns QEMU's error instead of throwing when it does not.
import type { ApiClient } from "../core/api/client.ts";
import { ImageService, VolumeService } from "../core/api/gen/trivet/v1/storage_pb.ts";
import { VmService, type Vm } from "../core/api/gen/trivet/v1/vm_pb.ts";
import { ApiError } from "../core/api/server/errors.ts";
import type { GuestFiles } from "./demo-guest.ts";

export const sample = { volume: "demo", image: "sample-disk0", vm: "sample", replicas: 3, diskBytes: 64n * 1024n * 1024n, vcpus: 1, memoryMib: 256n } as const;
/** TCG boot on a loaded two-core machine, including a retry when a node's NBD export was late. */
export const sampleStartTimeoutMs = 120_000;
/** A start that fails is tried again this many times in all (the disk export may lag creation). */
export const sampleStartAttemptsMax = 3;
export const sampleStopTimeoutMs = 30_000;
/** Right after the daemons start, the host agents may not have reported yet (a KVM probe runs first). */
export const sampleSetupWaitMs = 60_000;
const setupRetryMs = 500;
const statusPollMs = 250;
const retryPauseMs = 2000;

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

async function lookup<T>(get: () => Promise<T>): Promise<T | undefined> {
  try {
    return await get();
  } catch (err) {
    if (err instanceof ApiError && err.code === "not_found") return undefined;
    throw err;
  }
}

/** Whether a refusal may pass once the cluster has settled (host reports, a leader). */
function transient(err: unknown): boolean {
  return err instanceof ApiError && (err.code === "failed_precondition" || err.code === "unavailable");
}

/** Runs `fn` until it is not refused for a transient reason, or `waitMs` has passed. */
export async function retryTransient<T>(fn: () => Promise<T>, clock: Clock, waitMs: number): Promise<T> {
  const deadline = clock.now() + waitMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!transient(err) || clock.now() >= deadline) throw err;
      await clock.sleep(setupRetryMs);
    }
  }
}

/** Creates what is missing of the volume, the disk image and the VM; says which ones it made. */
export async function ensureSampleVm(api: ApiClient, guest: GuestFiles, clock: Clock, waitMs = sampleSetupWaitMs): Promise<string[]> {
  const made: string[] = [];
  const retry = <T>(fn: () => Promise<T>) => retryTransient(fn, clock, waitMs);
  if (!(await lookup(() => api.call(VolumeService, "getVolume", { name: sample.volume })))) {
    await retry(() => api.call(VolumeService, "createVolume", { name: sample.volume, replicaCount: sample.replicas, brickPaths: [] }));
    made.push(`volume ${sample.volume}`);
  }
  if (!(await lookup(() => api.call(ImageService, "getImage", { volume: sample.volume, name: sample.image })))) {
    await retry(() => api.call(ImageService, "createImage", { volume: sample.volume, name: sample.image, sizeBytes: sample.diskBytes, format: "raw", kind: "disk" }));
    made.push(`image ${sample.volume}/${sample.image}`);
  }
  if (!(await lookup(() => api.call(VmService, "getVm", { name: sample.vm })))) {
    await retry(() => api.call(VmService, "createVm", {
      name: sample.vm, description: "the demo's sample guest (busybox; shell on the serial console)", start: false,
      config: {
        vcpus: sample.vcpus, memoryMib: sample.memoryMib,
        disks: [{ volume: sample.volume, image: sample.image }],
        nics: [{ mac: "", bridge: "", vlan: 0 }],
        kernelBoot: { kernelPath: guest.kernel, initrdPath: guest.initrd, append: "console=ttyS0 quiet panic=-1" },
      },
    }));
    made.push(`vm ${sample.vm}`);
  }
  return made;
}

export type StartOutcome = { ok: true; vm: Vm } | { ok: false; error: string };

type Poll = { done: true; outcome: StartOutcome } | { done: false };

/** One look at the VM after a start asked at `askedAtMs`: running, failed (since then), or not yet. */
function judge(vm: Vm, askedAtMs: number): Poll {
  const s = vm.status;
  if (s?.state === "running" && s.pid > 0n) return { done: true, outcome: { ok: true, vm } };
  const fresh = (s?.reportedAtMs ?? 0n) >= BigInt(askedAtMs);
  if (fresh && (s?.state === "failed" || s?.state === "crashed")) {
    return { done: true, outcome: { ok: false, error: `VM ${vm.name} on ${vm.nodeName}: ${s.state}${s.error ? `: ${s.error}` : ""}` } };
  }
  return { done: false };
}

/** Starts the sample VM and waits until it runs; a failed start is retried a bounded number of times. */
export async function startSampleVm(api: ApiClient, clock: Clock, timeoutMs = sampleStartTimeoutMs): Promise<StartOutcome> {
  const deadline = clock.now() + timeoutMs;
  let last = `VM ${sample.vm} did not report running within ${timeoutMs / 1000} s`;
  for (let attempt = 1; attempt <= sampleStartAttemptsMax && clock.now() < deadline; attempt++) {
    const askedAtMs = clock.now();
    const current = (await api.call(VmService, "getVm", { name: sample.vm })).vm!;
    if (judge(current, Number.MAX_SAFE_INTEGER).done) return { ok: true, vm: current };
    await api.call(VmService, "startVm", { name: sample.vm });
    while (clock.now() < deadline) {
      const vm = (await api.call(VmService, "getVm", { name: sample.vm })).vm!;
      const poll = judge(vm, askedAtMs);
      if (!poll.done) {
        await clock.sleep(statusPollMs);
        continue;
      }
      if (poll.outcome.ok) return poll.outcome;
      last = `${poll.outcome.error} (attempt ${attempt} of ${sampleStartAttemptsMax})`;
      break;
    }
    await clock.sleep(retryPauseMs);
  }
  return { ok: false, error: last };
}

/**
 * Stops the sample VM at once (a daemon that stops leaves its guests running, by design) and
 * waits until its node reports no QEMU. Returns the pid of the QEMU it stopped, if there was one.
 */
export async function stopSampleVm(api: ApiClient, clock: Clock, timeoutMs = sampleStopTimeoutMs): Promise<number | undefined> {
  const vm = await lookup(async () => (await api.call(VmService, "getVm", { name: sample.vm })).vm);
  const pid = vm?.status?.pid ? Number(vm.status.pid) : undefined;
  if (!vm || !pid) return undefined;
  await api.call(VmService, "stopVm", { name: sample.vm });
  const deadline = clock.now() + timeoutMs;
  while (clock.now() < deadline) {
    const now = (await api.call(VmService, "getVm", { name: sample.vm })).vm;
    if (!now?.status?.pid) return pid;
    await clock.sleep(statusPollMs);
  }
  return pid;
}
