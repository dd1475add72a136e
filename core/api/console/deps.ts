// What the console transports (WebSocket and gRPC) need from the node, injected so that tests
// can supply their own: who the caller is (the API's authenticator and RBAC), where a VM's
// console socket is (the host agent's resolver), the node's own name, the audit log, and how to
// reach a console on another node (proxy.ts).
import type { AuditRecord, Credentials } from "../server/dispatch.ts";
import type { ByteBackend } from "./bridge.ts";
import { ApiError } from "../server/errors.ts";
import type { Principal } from "../server/service.ts";

export type ConsoleKind = "serial" | "vnc";

/** Where a VM's console can be reached: a unix socket on `node`. */
export interface ConsoleTarget {
  socketPath: string;
  node: string;
}

export interface ConsoleDeps {
  /** This node's name: VM consoles and shells are served only by the node they are on. */
  nodeName: string;
  /** Throws ApiError unauthenticated, or permission_denied for a missing/bad CSRF token. */
  authenticate(creds: Credentials, opts: { mutation: boolean; nowMs: number }): Principal;
  /** Throws ApiError permission_denied naming the permission. */
  authorize(principal: Principal, permission: string, object?: string): void;
  /** The host agent's answer; undefined when no such VM (or it has no such console). */
  resolveVm(vmName: string, kind: ConsoleKind): ConsoleTarget | undefined;
  audit(record: AuditRecord): Promise<void>;
  nowMs(): number;
  /**
   * Opens a VM's console on the node it runs on, for a user this node has authenticated and
   * authorized; without it, a console on another node is refused (wrong_node).
   */
  openRemote?(node: string, vm: string, kind: ConsoleKind, onBehalfOf: string): Promise<ByteBackend>;
}

/** Permissions of the consoles: rbac.ts lets Operators act on the "vm" area, only Administrators on "host". */
export const consolePermissions = { vm: "vm.console", shell: "host.shell" } as const;

const vmNamePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/**
 * Checks the caller may use the console and finds its socket: on this node, or on another node
 * when this one can proxy to it (deps.openRemote).
 */
export function resolveVmConsole(deps: ConsoleDeps, principal: Principal, vm: string, kind: ConsoleKind): ConsoleTarget {
  if (!vmNamePattern.test(vm)) throw new ApiError("invalid_argument", `opening the ${kind} console: VM name ${JSON.stringify(vm)} is not valid`, { field: "vm", reason: "bad_name" });
  deps.authorize(principal, consolePermissions.vm, `vm/${vm}`);
  const target = deps.resolveVm(vm, kind);
  if (!target) throw new ApiError("not_found", `opening the ${kind} console: VM "${vm}" does not exist or is not running`, { field: "vm", reason: "vm_not_found" });
  if (target.node !== deps.nodeName && !deps.openRemote) {
    throw new ApiError("failed_precondition", `opening the ${kind} console: VM "${vm}" runs on node ${target.node}; connect to that node (this is ${deps.nodeName})`, { reason: "wrong_node" });
  }
  return target;
}

/**
 * The target of a console another node opens on a user's behalf: only a VM of this node — a
 * proxied request is never proxied again, so a stale placement cannot make nodes loop.
 */
export function resolveProxiedConsole(deps: ConsoleDeps, vm: string, kind: ConsoleKind, fromNode: string): ConsoleTarget {
  if (!vmNamePattern.test(vm)) throw new ApiError("invalid_argument", `opening the ${kind} console for node ${fromNode}: VM name ${JSON.stringify(vm)} is not valid`, { field: "vm", reason: "bad_name" });
  const target = deps.resolveVm(vm, kind);
  if (!target) throw new ApiError("not_found", `opening the ${kind} console for node ${fromNode}: VM "${vm}" does not exist or is not running`, { field: "vm", reason: "vm_not_found" });
  if (target.node !== deps.nodeName) {
    throw new ApiError("failed_precondition", `opening the ${kind} console for node ${fromNode}: VM "${vm}" runs on node ${target.node}, not on this node (${deps.nodeName})`, { reason: "wrong_node" });
  }
  return target;
}

/** Records a console attach; a lost audit entry is logged, the console still opens. */
export async function auditConsole(deps: ConsoleDeps, log: (msg: string, f: Record<string, unknown>) => void, record: AuditRecord): Promise<void> {
  try {
    await deps.audit(record);
  } catch (err) {
    log("audit entry not recorded", { action: record.action, object: record.object, error: String(err) });
  }
}
