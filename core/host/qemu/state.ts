// The run state of a VM as the runtime tracks it, as a pure reducer: QMP query-status answers,
// QMP events and the process exit go in, the next state comes out. Kept apart from the runtime
// so every transition is tested without QEMU.

export type VmRunState =
  /** Spawned; QMP not yet answered. */
  | "starting"
  | "running"
  | "paused"
  /** QEMU reported SHUTDOWN and is about to exit. */
  | "shutting-down"
  /** The guest powered off by itself (or on the ACPI button) and QEMU exited cleanly. */
  | "shutdown"
  /** The host stopped it: quit, a signal, or a forced kill. */
  | "stopped"
  /** QEMU died unexpectedly, or the guest panicked. */
  | "crashed";

export interface VmExit {
  /** null when killed by a signal, or when the exit was seen from outside (after a re-attach). */
  code: number | null;
  signal: string | null;
  /** False when Trivet was not QEMU's parent (re-attached) and so could not read the status. */
  known: boolean;
}

export type VmStateInput =
  | { type: "status"; status: string }
  | { type: "event"; event: string; data: Record<string, unknown> }
  | { type: "exit"; exit: VmExit; stopRequested: boolean };

export interface VmStateContext {
  state: VmRunState;
  /** The reason of the last SHUTDOWN event ("guest-shutdown", "host-qmp-quit", …), if any. */
  shutdownReason: string | null;
}

export const initialVmState: VmStateContext = { state: "starting", shutdownReason: null };

const terminal: ReadonlySet<VmRunState> = new Set(["shutdown", "stopped", "crashed"]);

/** QEMU RunState names (qapi/run-state.json) grouped by what a user would call them. */
function fromQemuStatus(status: string): VmRunState {
  switch (status) {
    case "running":
      return "running";
    case "shutdown":
      return "shutting-down";
    case "internal-error":
    case "guest-panicked":
      return "crashed";
    default:
      // paused, prelaunch, suspended, io-error, watchdog, debug, (in|post|finish-)migrate, save-vm, restore-vm
      return "paused";
  }
}

function afterExit(ctx: VmStateContext, exit: VmExit, stopRequested: boolean): VmRunState {
  if (ctx.state === "crashed") return "crashed";
  if (stopRequested) return "stopped";
  const reason = ctx.shutdownReason ?? "";
  const clean = exit.known ? exit.code === 0 : reason !== "";
  if (!clean) return "crashed";
  return reason.startsWith("guest-") ? "shutdown" : "stopped";
}

export function reduceVmState(ctx: VmStateContext, input: VmStateInput): VmStateContext {
  if (input.type === "exit") return { ...ctx, state: afterExit(ctx, input.exit, input.stopRequested) };
  if (terminal.has(ctx.state)) return ctx;
  if (input.type === "status") return { ...ctx, state: fromQemuStatus(input.status) };
  switch (input.event) {
    case "STOP":
      return ctx.state === "shutting-down" ? ctx : { ...ctx, state: "paused" };
    case "RESUME":
      return { ...ctx, state: "running" };
    case "SHUTDOWN": {
      const reason = typeof input.data.reason === "string" ? input.data.reason : input.data.guest === true ? "guest-shutdown" : "host-unknown";
      return { state: "shutting-down", shutdownReason: reason };
    }
    case "GUEST_PANICKED":
      return { ...ctx, state: "crashed" };
    default:
      return ctx;
  }
}
