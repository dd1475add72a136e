// Reading a VM through the API and waiting for its reported status: what every VM suite on real
// daemons does between its steps.
import type { ApiClient } from "../../core/api/client.ts";
import { VmService, type Vm } from "../../core/api/gen/trivet/v1/vm_pb.ts";
import { DaemonCluster } from "../cluster/daemon-cluster.ts";

/** How long a VM may take to reach a status (boots run under TCG). */
export const statusTimeoutMs = 60_000;

export interface VmStatus {
  getVm(name: string): Promise<Vm>;
  /** Resolves with the VM once its reported status satisfies ok; else fails naming what it waited for. */
  waitStatus(name: string, ok: (v: Vm) => boolean, what: string, timeoutMs?: number): Promise<Vm>;
}

/** api: the suite's client, which beforeAll creates (read at each call). pollMs: between reads. */
export function vmStatus(api: () => ApiClient, pollMs?: number): VmStatus {
  const getVm = async (name: string): Promise<Vm> => (await api().call(VmService, "getVm", { name })).vm!;
  const waitStatus = (name: string, ok: (v: Vm) => boolean, what: string, timeoutMs = statusTimeoutMs): Promise<Vm> =>
    DaemonCluster.retry(async () => {
      const v = await getVm(name);
      if (!ok(v)) throw new Error(`VM ${name}: waiting for ${what}; status ${JSON.stringify({ state: v.status?.state, pid: String(v.status?.pid), error: v.status?.error })}`);
      return v;
    }, timeoutMs, pollMs);
  return { getVm, waitStatus };
}
