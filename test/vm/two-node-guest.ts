// Test support: two real `trivet serve` daemons (n1 initialises the cluster, n2 joins) and one
// running test guest created through the API, with the node it was placed on (`owner`) and the
// other one (`other`), for tests of what one node shows or proxies of a VM on another node.
import { spawnSync } from "node:child_process";
import type { ApiClient } from "../../core/api/client.ts";
import { VmService, type Vm } from "../../core/api/gen/trivet/v1/vm_pb.ts";
import { DaemonCluster, type DaemonNode } from "../cluster/daemon-cluster.ts";
import { ensureGuest } from "../guest/guest.ts";

/** Until both agents have reported and the VM is created and running (QEMU up, not the guest booted). */
export const twoNodeStartTimeoutMs = 120_000;

export interface TwoNodeGuest {
  c: DaemonCluster;
  vm: Vm;
  owner: DaemonNode;
  other: DaemonNode;
  /** An API client on each node, by node name. */
  api: Map<string, ApiClient>;
  get(via: DaemonNode): Promise<Vm>;
  /** Stops the daemons and kills the guest's QEMU (which outlives its daemon by design). */
  close(): Promise<void>;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Sets everything up; on a failure, cleans up before rethrowing. */
export async function startTwoNodeGuest(vmName: string, opts: { display?: "none" | "vnc" } = {}): Promise<TwoNodeGuest> {
  const c = new DaemonCluster();
  const api = new Map<string, ApiClient>();
  const pids = new Set<number>();
  const close = async () => {
    for (const a of api.values()) a.close();
    await c.stop();
    for (const pid of pids) if (pidAlive(pid)) process.kill(pid, "SIGKILL");
  };
  // A QEMU started for the VM before its pid was seen is found by the uuid on its command line.
  const vmIds: string[] = [];
  const killByUuid = () => {
    for (const id of vmIds) {
      const r = spawnSync("pgrep", ["-f", "--", `qemu-system.*-uuid ${id}`], { encoding: "utf8" });
      for (const pid of r.stdout.split("\n").filter((l) => l.trim() !== "").map(Number)) pids.add(pid);
    }
  };
  try {
    return await setUp(c, api, pids, vmIds, vmName, opts.display ?? "none", async () => {
      killByUuid();
      await close();
    });
  } catch (err) {
    killByUuid();
    await close();
    throw err;
  }
}

async function setUp(c: DaemonCluster, api: Map<string, ApiClient>, pids: Set<number>, vmIds: string[], vmName: string, display: string, close: () => Promise<void>): Promise<TwoNodeGuest> {
  const image = await ensureGuest();
  const n1 = await c.allocate("n1");
  const n2 = await c.allocate("n2");
  c.init(n1);
  c.serve(n1);
  await c.login(n1);
  const joined = c.join(n2, await c.token(n1));
  if (joined.code !== 0) throw new Error(`n2 did not join: ${joined.stderr}`);
  c.serve(n2);
  for (const n of [n1, n2]) api.set(n.name, c.client(n));
  const a1 = api.get("n1")!;
  const created = await DaemonCluster.retry(() => a1.call(VmService, "createVm", {
    name: vmName, start: true,
    config: { vcpus: 1, memoryMib: 256n, display, kernelBoot: { kernelPath: image.kernel, initrdPath: image.initrd, append: "console=ttyS0 quiet panic=-1" } },
  }), twoNodeStartTimeoutMs);
  const vm = created.vm!;
  vmIds.push(vm.id);
  const owner = vm.nodeName === "n1" ? n1 : n2;
  const other = owner === n1 ? n2 : n1;
  const get = async (via: DaemonNode) => (await api.get(via.name)!.call(VmService, "getVm", { name: vmName })).vm!;
  const running = await DaemonCluster.retry(async () => {
    const v = await get(owner);
    if (v.status?.state !== "running" || v.status.pid === 0n) throw new Error(`VM ${vmName} not running yet: ${JSON.stringify({ state: v.status?.state, error: v.status?.error })}`);
    return v;
  }, twoNodeStartTimeoutMs);
  pids.add(Number(running.status!.pid));
  return { c, vm: running, owner, other, api, get, close };
}
