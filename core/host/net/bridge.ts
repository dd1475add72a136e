// Linux bridges on a node, through iproute2 (`ip`, `bridge`) spawned with argument arrays: which
// bridges exist (the host agent reports them so create/update can refuse an unknown one), and
// the VLAN filtering a tagged NIC needs. The command runner is injected; hostNetRunner runs the
// real tools, optionally inside a network namespace (tests).
//
// VLANs: a NIC with a VLAN id is an untagged member of that VLAN on its bridge, with the bridge's
// VLAN filtering turned on (one bridge carries every VLAN, as Proxmox's "VLAN aware" bridges do).
// Turning filtering on keeps untagged traffic flowing (every port keeps its default PVID 1); the
// uplink must carry the VLANs tagged (`bridge vlan add dev <uplink> vid <id>`), set up by the admin.
import { runBounded } from "../facts.ts";

export const netCommandTimeoutMs = 5000;

export class NetError extends Error {
  readonly code = "net-command";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NetError";
  }
}

/** Runs `ip` or `bridge` with `args` and returns its output; throws NetError naming what failed. */
export type NetRunner = (tool: "ip" | "bridge", args: readonly string[]) => Promise<string>;

/** The real iproute2 tools; with `netns`, every command acts in that network namespace. */
export function hostNetRunner(options: { netns?: string; timeoutMs?: number } = {}): NetRunner {
  const timeoutMs = options.timeoutMs ?? netCommandTimeoutMs;
  return async (tool, args) => {
    const argv = options.netns === undefined ? [...args] : ["-n", options.netns, ...args];
    const r = await runBounded(tool, argv, timeoutMs);
    if (r.code === 0) return r.output;
    const why = r.timedOut ? `timed out after ${timeoutMs} ms` : r.spawnError ?? `exit ${r.code}: ${r.output.trim().slice(0, 500)}`;
    throw new NetError(`${tool} ${argv.join(" ")}: ${why}`);
  };
}

interface IpLink {
  ifname: string;
  master?: string;
  operstate?: string;
  linkinfo?: { info_kind?: string; info_data?: { vlan_filtering?: number } };
}

function parseLinks(output: string): IpLink[] {
  return output.trim() === "" ? [] : (JSON.parse(output) as IpLink[]);
}

/** Names of the node's Linux bridges, sorted. */
export async function listBridges(run: NetRunner): Promise<string[]> {
  return parseLinks(await run("ip", ["-j", "link", "show", "type", "bridge"])).map((l) => l.ifname).sort();
}

/** One link with details (master, kind, VLAN filtering); null when it does not exist. */
export async function showLink(run: NetRunner, name: string): Promise<IpLink | null> {
  const links = await run("ip", ["-d", "-j", "link", "show", "dev", name]).then(parseLinks, (err: unknown) => {
    if (err instanceof NetError && /does not exist|Cannot find device/.test(err.message)) return [];
    throw err;
  });
  return links[0] ?? null;
}

export async function createBridge(run: NetRunner, name: string): Promise<void> {
  await run("ip", ["link", "add", "name", name, "type", "bridge"]);
  await run("ip", ["link", "set", "dev", name, "up"]);
}

/** Removes a link (bridge or tap); one that is already gone is fine. */
export async function deleteLink(run: NetRunner, name: string): Promise<void> {
  try {
    await run("ip", ["link", "del", "dev", name]);
  } catch (err) {
    if (err instanceof NetError && /does not exist|Cannot find device/.test(err.message)) return;
    throw err;
  }
}

/** Turns on VLAN filtering of `bridge` unless it is on already. */
export async function ensureVlanFiltering(run: NetRunner, bridge: string): Promise<void> {
  const link = await showLink(run, bridge);
  if (!link || link.linkinfo?.info_kind !== "bridge") throw new NetError(`turning on VLAN filtering: ${bridge} is not a bridge on this node`);
  if (link.linkinfo.info_data?.vlan_filtering === 1) return;
  try {
    await run("ip", ["link", "set", "dev", bridge, "type", "bridge", "vlan_filtering", "1"]);
  } catch (err) {
    const unsupported = err instanceof NetError && /Operation not supported/.test(err.message);
    const why = unsupported ? "this kernel has no bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING)" : (err as Error).message;
    throw new NetError(`turning on VLAN filtering of bridge ${bridge} for a tagged NIC: ${why}`, { cause: err });
  }
}
