// QMP, layer 3: one typed wrapper per QMP command Trivet uses, each with its own timeout and a
// strict check of the reply's shape. Nothing else in Trivet spells a QMP command name. (No
// human-monitor-command: its text output is not an interface.)
import { QmpError } from "./wire.ts";
import type { QmpExecutor } from "./monitor.ts";

export const queryTimeoutMs = 2000;
/** stop and cont wait for every vCPU to leave or enter the guest; TCG on a loaded host is slow. */
export const runStateTimeoutMs = 5000;
export const powerdownTimeoutMs = 2000;
export const resetTimeoutMs = 2000;
export const quitTimeoutMs = 5000;
/** Growing a qcow2 or an NBD-backed disk touches metadata on the storage side. */
export const blockResizeTimeoutMs = 30_000;
export const deviceDelTimeoutMs = 5000;
/** blockdev-add of an NBD node connects and negotiates with the node's NBD server. */
export const blockdevAddTimeoutMs = 10_000;
/** blockdev-reopen drains the node's in-flight I/O before it swaps children. */
export const blockdevReopenTimeoutMs = 15_000;
/** blockdev-del of an NBD node closes its connection (a last flush may go out). */
export const blockdevDelTimeoutMs = 10_000;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function malformed(command: string, why: string): QmpError {
  return new QmpError("protocol", `${command}: unexpected reply from QEMU: ${why}`, { command });
}

async function runVoid(m: QmpExecutor, command: string, args: Record<string, unknown> | undefined, timeoutMs: number): Promise<void> {
  const value = await m.execute(command, args, timeoutMs);
  if (!isObject(value) || Object.keys(value).length !== 0) throw malformed(command, `expected {}, got ${JSON.stringify(value)}`);
}

export interface VmRunStatus {
  running: boolean;
  /** QEMU's RunState: "running", "paused", "prelaunch", "shutdown", "internal-error", "guest-panicked", … */
  status: string;
}

export async function queryStatus(m: QmpExecutor): Promise<VmRunStatus> {
  const v = await m.execute("query-status", undefined, queryTimeoutMs);
  if (!isObject(v) || typeof v.running !== "boolean" || typeof v.status !== "string") throw malformed("query-status", JSON.stringify(v));
  return { running: v.running, status: v.status };
}

/** Resumes vCPUs (also starts a VM created with -S). */
export function cont(m: QmpExecutor): Promise<void> {
  return runVoid(m, "cont", undefined, runStateTimeoutMs);
}

/** Pauses all vCPUs; the guest's clock stops with them. */
export function stop(m: QmpExecutor): Promise<void> {
  return runVoid(m, "stop", undefined, runStateTimeoutMs);
}

/** Presses the ACPI power button; the guest decides whether and when to power off. */
export function systemPowerdown(m: QmpExecutor): Promise<void> {
  return runVoid(m, "system_powerdown", undefined, powerdownTimeoutMs);
}

export function systemReset(m: QmpExecutor): Promise<void> {
  return runVoid(m, "system_reset", undefined, resetTimeoutMs);
}

/**
 * Asks QEMU to exit. QEMU may close the socket before or after its reply reaches us, so a
 * connection that closes while quit is pending counts as success; the caller still waits for
 * the process to end.
 */
export async function quit(m: QmpExecutor): Promise<void> {
  try {
    await runVoid(m, "quit", undefined, quitTimeoutMs);
  } catch (err) {
    if (err instanceof QmpError && err.code === "closed") return;
    throw err;
  }
}

export interface VcpuInfo {
  cpuIndex: number;
  /** Host thread id of the vCPU (for CPU accounting and pinning). */
  threadId: number;
}

export async function queryCpusFast(m: QmpExecutor): Promise<VcpuInfo[]> {
  const v = await m.execute("query-cpus-fast", undefined, queryTimeoutMs);
  if (!Array.isArray(v)) throw malformed("query-cpus-fast", "not a list");
  return v.map((c: unknown) => {
    if (!isObject(c) || typeof c["cpu-index"] !== "number" || typeof c["thread-id"] !== "number") throw malformed("query-cpus-fast", JSON.stringify(c));
    return { cpuIndex: c["cpu-index"], threadId: c["thread-id"] };
  });
}

/** Needs a virtio-balloon device; without one QEMU answers with a DeviceNotActive command error. */
export async function queryBalloon(m: QmpExecutor): Promise<{ actualBytes: number }> {
  const v = await m.execute("query-balloon", undefined, queryTimeoutMs);
  if (!isObject(v) || typeof v.actual !== "number") throw malformed("query-balloon", JSON.stringify(v));
  return { actualBytes: v.actual };
}

export async function queryMemorySizeSummary(m: QmpExecutor): Promise<{ baseBytes: number; pluggedBytes: number }> {
  const v = await m.execute("query-memory-size-summary", undefined, queryTimeoutMs);
  if (!isObject(v) || typeof v["base-memory"] !== "number") throw malformed("query-memory-size-summary", JSON.stringify(v));
  const plugged = v["plugged-memory"];
  if (plugged !== undefined && typeof plugged !== "number") throw malformed("query-memory-size-summary", JSON.stringify(v));
  return { baseBytes: v["base-memory"], pluggedBytes: plugged ?? 0 };
}

export interface BlockInfo {
  /** The guest device's QOM path or id (with -blockdev, QEMU's "device" name is empty). */
  qdev: string;
  removable: boolean;
  /** Null when no medium is inserted (an empty CD-ROM). */
  medium: { nodeName: string; file: string; readonly: boolean; virtualSizeBytes: number } | null;
}

function parseBlock(b: unknown): BlockInfo {
  if (!isObject(b) || typeof b.removable !== "boolean") throw malformed("query-block", JSON.stringify(b));
  const qdev = typeof b.qdev === "string" ? b.qdev : typeof b.device === "string" ? b.device : "";
  const ins = b.inserted;
  if (ins === undefined) return { qdev, removable: b.removable, medium: null };
  const image = isObject(ins) ? ins.image : undefined;
  if (!isObject(ins) || typeof ins["node-name"] !== "string" || typeof ins.file !== "string" || typeof ins.ro !== "boolean" || !isObject(image) || typeof image["virtual-size"] !== "number") {
    throw malformed("query-block", JSON.stringify(b));
  }
  return { qdev, removable: b.removable, medium: { nodeName: ins["node-name"], file: ins.file, readonly: ins.ro, virtualSizeBytes: image["virtual-size"] } };
}

export async function queryBlock(m: QmpExecutor): Promise<BlockInfo[]> {
  const v = await m.execute("query-block", undefined, queryTimeoutMs);
  if (!Array.isArray(v)) throw malformed("query-block", "not a list");
  return v.map(parseBlock);
}

/** Grows a disk while the guest runs; nodeName is the builder's "drive-<disk id>". */
export function blockResize(m: QmpExecutor, nodeName: string, sizeBytes: number): Promise<void> {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0) {
    return Promise.reject(new QmpError("command", `block_resize of ${nodeName}: ${sizeBytes} is not a size in bytes`, { command: "block_resize" }));
  }
  return runVoid(m, "block_resize", { "node-name": nodeName, size: sizeBytes }, blockResizeTimeoutMs);
}

/**
 * Asks for a device's removal. The reply only means the request was accepted: the device is
 * gone when the DEVICE_DELETED event names it (the guest must cooperate for PCI devices).
 */
export function deviceDel(m: QmpExecutor, id: string): Promise<void> {
  return runVoid(m, "device_del", { id }, deviceDelTimeoutMs);
}

/** QEMU's BlockdevOptions as JSON (qapi/block-core.json): typed values, nested objects, children by node name. */
export type BlockdevOptions = { driver: string; "node-name": string } & Record<string, unknown>;

/** Adds a node to the block graph (owned by the monitor until blockdev-del). */
export function blockdevAdd(m: QmpExecutor, options: BlockdevOptions): Promise<void> {
  return runVoid(m, "blockdev-add", options, blockdevAddTimeoutMs);
}

/**
 * Reopens nodes with new options (QEMU 6.1+, stable). Every option left out returns to its
 * default, so each entry must carry all the options the node was opened with.
 */
export function blockdevReopen(m: QmpExecutor, options: BlockdevOptions[]): Promise<void> {
  if (options.length === 0) return Promise.reject(new QmpError("command", "blockdev-reopen: no node to reopen", { command: "blockdev-reopen" }));
  return runVoid(m, "blockdev-reopen", { options }, blockdevReopenTimeoutMs);
}

/** Removes a node added by blockdev-add; QEMU refuses one still in use. */
export function blockdevDel(m: QmpExecutor, nodeName: string): Promise<void> {
  return runVoid(m, "blockdev-del", { "node-name": nodeName }, blockdevDelTimeoutMs);
}

export interface BlockNodeInfo {
  nodeName: string;
  /** The block driver: "raw", "qcow2", "nbd", "file", … */
  driver: string;
  readonly: boolean;
  /** The size the node presents to its parents (a format node: the guest-visible size). */
  virtualSizeBytes: number;
}

/** Every named node of the block graph, protocol nodes included (flat). */
export async function queryNamedBlockNodes(m: QmpExecutor): Promise<BlockNodeInfo[]> {
  const v = await m.execute("query-named-block-nodes", { flat: true }, queryTimeoutMs);
  if (!Array.isArray(v)) throw malformed("query-named-block-nodes", "not a list");
  return v.map((n: unknown) => {
    const image = isObject(n) ? n.image : undefined;
    if (!isObject(n) || typeof n["node-name"] !== "string" || typeof n.drv !== "string" || typeof n.ro !== "boolean" || !isObject(image) || typeof image["virtual-size"] !== "number") {
      throw malformed("query-named-block-nodes", JSON.stringify(n));
    }
    return { nodeName: n["node-name"], driver: n.drv, readonly: n.ro, virtualSizeBytes: image["virtual-size"] };
  });
}
