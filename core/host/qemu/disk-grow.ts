// Growing a running VM's disk without a restart. A volume disk is a format node ("drive-<id>")
// on an NBD protocol node, and QEMU 7.2's NBD client cannot grow (block/nbd.c: the export size
// is fixed when the connection opens). So: blockdev-add a new NBD node for the same export (a new
// connection, which sees the grown export), blockdev-reopen the format node with that node as
// its file child and every other option exactly as the command line gave it, blockdev-del the
// old node, then block_resize the format node, which tells virtio-blk / virtio-scsi to notify
// the guest. A disk on a local file (file-posix can grow) is only block_resize'd.
//
// The options come from the argv QEMU was started with (runtime.json), not from today's VM
// record, so a reopen never changes a setting the guest was started with.
import { QemuRuntimeError } from "./rundir.ts";
import { formatNodeName, protocolGenerationsMax, protocolNodeName } from "./devices.ts";
import { parseKeyValues } from "./options.ts";
import * as qmp from "./qmp/commands.ts";
import type { BlockdevOptions, BlockNodeInfo } from "./qmp/commands.ts";
import type { QmpExecutor } from "./qmp/monitor.ts";

/** Options the builder writes as on/off that QMP wants as JSON booleans. */
const booleanKeys = new Set(["read-only", "auto-read-only", "force-share", "cache.direct", "cache.no-flush"]);
/** Options a protocol node inherits from its format parent when QEMU opens it from the command line. */
const inheritedKeys = ["read-only", "cache.direct", "cache.no-flush", "discard"];

export interface GrowTarget {
  /** The guest-visible size (the format node's). */
  sizeBytes: number;
  /** The size the NBD export must have first (qcow2 needs room for its metadata beyond sizeBytes). */
  protocolBytes: number;
}

/**
 * "grown": the guest was told of the new size; "already": QEMU had it; "export-not-ready": a new
 * connection still sees a smaller export (the storage node grows it within a second), try again.
 */
export type GrowOutcome = "grown" | "already" | "export-not-ready";

export interface GrowResult {
  outcome: GrowOutcome;
  /** Old protocol nodes that could not be removed (they keep an idle NBD connection open). */
  leftovers: string[];
}

function nest(entries: [string, string | undefined][], what: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of entries) {
    if (value === undefined) throw new QemuRuntimeError("grow-unsupported", `${what}: option "${key}" has no value`);
    const typed = booleanKeys.has(key) ? value === "on" : value;
    const path = key.split(".");
    let at = out;
    for (const part of path.slice(0, -1)) {
      const next = at[part];
      if (typeof next === "string") throw new QemuRuntimeError("grow-unsupported", `${what}: option "${key}" conflicts with "${part}"`);
      at = (next as Record<string, unknown> | undefined) ?? (at[part] = {}) as Record<string, unknown>;
    }
    at[path[path.length - 1]!] = typed;
  }
  return out;
}

export interface DiskNodes {
  /** The format node's options (with its file child as nested options, as on the command line). */
  format: Record<string, unknown> & { driver: string };
  /** The file child's options without a node name; its driver is "nbd" or "file". */
  protocol: Record<string, unknown> & { driver: string };
}

/** The options QEMU was started with for a disk's nodes, from its argv (pure). */
export function diskNodesFromArgv(argv: readonly string[], diskId: string): DiskNodes {
  const name = formatNodeName(diskId);
  const what = `growing disk ${diskId}`;
  for (let i = 0; i + 1 < argv.length; i++) {
    if (argv[i] !== "-blockdev") continue;
    const entries = parseKeyValues(argv[i + 1]!);
    if (!entries.some(([k, v]) => k === "node-name" && v === name)) continue;
    const own = entries.filter(([k]) => !k.startsWith("file."));
    const file = entries.filter(([k]) => k.startsWith("file.") && k !== "file.node-name").map(([k, v]): [string, string | undefined] => [k.slice("file.".length), v]);
    const inherited = own.filter(([k]) => inheritedKeys.includes(k));
    const format = nest(own, what);
    const protocol = nest([...file, ...inherited], what);
    if (typeof format.driver !== "string" || typeof protocol.driver !== "string") throw new QemuRuntimeError("grow-unsupported", `${what}: its -blockdev names no format or protocol driver`);
    return { format: format as DiskNodes["format"], protocol: protocol as DiskNodes["protocol"] };
  }
  throw new QemuRuntimeError("grow-unsupported", `${what}: QEMU was started without a -blockdev node ${name}`);
}

const generationOf = (diskId: string, nodeName: string): number | null => {
  const m = /^nbd(\d+)-(.+)$/.exec(nodeName);
  return m !== null && m[2] === diskId ? Number(m[1]) : null;
};

function formatNode(nodes: readonly BlockNodeInfo[], diskId: string): BlockNodeInfo {
  const node = nodes.find((n) => n.nodeName === formatNodeName(diskId));
  if (!node) throw new QemuRuntimeError("grow-unsupported", `growing disk ${diskId}: QEMU has no block node ${formatNodeName(diskId)}`);
  return node;
}

/**
 * Brings a running disk to target.sizeBytes (see the file header). Safe to repeat after a
 * failure at any step: a connection added but not attached has the highest generation and is
 * removed with the other old nodes on the next success.
 */
export async function growDiskOnline(m: QmpExecutor, argv: readonly string[], diskId: string, target: GrowTarget): Promise<GrowResult> {
  const what = `growing disk ${diskId} to ${target.sizeBytes} bytes`;
  const nodes = await qmp.queryNamedBlockNodes(m);
  if (formatNode(nodes, diskId).virtualSizeBytes >= target.sizeBytes) return { outcome: "already", leftovers: [] };
  const { format, protocol } = diskNodesFromArgv(argv, diskId);
  let leftovers: string[] = [];
  if (protocol.driver === "nbd") {
    const swapped = await swapConnection(m, nodes, diskId, format, protocol, target.protocolBytes);
    if (swapped === null) return { outcome: "export-not-ready", leftovers: [] };
    leftovers = swapped;
  } else if (protocol.driver !== "file") {
    throw new QemuRuntimeError("grow-unsupported", `${what}: its ${protocol.driver} protocol node cannot be grown online`);
  }
  try {
    await qmp.blockResize(m, formatNodeName(diskId), target.sizeBytes);
  } catch (err) {
    throw new QemuRuntimeError("grow-refused", `${what}: QEMU refused block_resize: ${(err as Error).message}`, { cause: err });
  }
  return { outcome: "grown", leftovers };
}

/**
 * Attaches a new NBD connection of the export under the format node and removes the old ones.
 * Null when the new connection still sees fewer than protocolBytes (it is removed again).
 */
async function swapConnection(m: QmpExecutor, nodes: readonly BlockNodeInfo[], diskId: string, format: DiskNodes["format"], protocol: DiskNodes["protocol"], protocolBytes: number): Promise<string[] | null> {
  const what = `growing disk ${diskId}`;
  const generations = nodes.map((n) => generationOf(diskId, n.nodeName)).filter((g): g is number => g !== null);
  const next = generations.length === 0 ? 0 : Math.max(...generations) + 1;
  if (next >= protocolGenerationsMax) throw new QemuRuntimeError("grow-unsupported", `${what}: ${protocolGenerationsMax} online grows since QEMU started; restart the VM to grow it again`);
  const fresh = protocolNodeName(diskId, next);
  await qmp.blockdevAdd(m, { ...protocol, "node-name": fresh } as BlockdevOptions);
  const added = (await qmp.queryNamedBlockNodes(m)).find((n) => n.nodeName === fresh);
  if (!added || added.virtualSizeBytes < protocolBytes) {
    await qmp.blockdevDel(m, fresh);
    return null;
  }
  try {
    await qmp.blockdevReopen(m, [{ ...format, "node-name": formatNodeName(diskId), file: fresh }]);
  } catch (err) {
    await qmp.blockdevDel(m, fresh).catch(() => undefined);
    throw new QemuRuntimeError("grow-refused", `${what}: QEMU refused to reopen ${formatNodeName(diskId)} on a new NBD connection: ${(err as Error).message}`, { cause: err });
  }
  // The command line's node goes away by itself once detached; those added here must be deleted.
  const leftovers: string[] = [];
  for (const n of await qmp.queryNamedBlockNodes(m)) {
    if (n.nodeName === fresh || generationOf(diskId, n.nodeName) === null) continue;
    await qmp.blockdevDel(m, n.nodeName).catch(() => leftovers.push(n.nodeName));
  }
  return leftovers;
}
