// What the VM pages show and offer for a VM's state: the label and colour of its run state, and
// which lifecycle actions make sense from it. Pure, so the rules are tested without a browser;
// the API still decides (a refused action shows the API's message).
import type { Vm } from "../api/types.ts";
import { consoleUrl } from "../console/urls.ts";

export type VmAction = "start" | "shutdown" | "stop" | "pause" | "resume" | "delete";

/** The run state the node's host agent reported; "pending" before its first report. */
export function vmState(vm: Vm): string {
  return vm.status?.state || "pending";
}

const running = new Set(["running", "starting"]);

/** Whether `action` is offered for a VM in `state`. */
export function actionAllowed(action: VmAction, state: string): boolean {
  switch (action) {
    case "start": return !running.has(state) && state !== "paused";
    case "shutdown": return running.has(state);
    case "stop": return running.has(state) || state === "paused";
    case "pause": return state === "running";
    case "resume": return state === "paused";
    case "delete": return !running.has(state) && state !== "paused";
  }
}

export type StateColor = "green" | "orange" | "red" | "grey" | "blue";

export function stateColor(state: string): StateColor {
  if (state === "running") return "green";
  if (state === "paused" || state === "starting") return "orange";
  if (state === "crashed" || state === "failed") return "red";
  if (state === "pending") return "blue";
  return "grey";
}

/** Order for sorting by state: running first, then the ones that need a look, then the rest. */
export function stateRank(state: string): number {
  return ["running", "starting", "paused", "crashed", "failed", "pending", "shutdown", "stopped"].indexOf(state) + 1 || 9;
}

/** The console WebSocket URL of a VM's serial console on the node serving `location`. */
export function serialConsoleUrl(location: { protocol: string; host: string }, vmName: string): string {
  return consoleUrl(location, "serial", vmName);
}
