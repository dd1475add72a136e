// Tap devices of a VM's bridged NICs: the name of each (derived from the VM id and the NIC's
// index, so a restarted agent finds the taps of an earlier run), the iproute2 commands that
// create one and enslave it to its bridge (with its VLAN), and their removal after QEMU exits.
// The agent creates the taps before QEMU starts; QEMU opens them by name (script=no).
import { deleteLink, ensureVlanFiltering, NetError, showLink, type NetRunner } from "./bridge.ts";

/** Linux IFNAMSIZ is 16 bytes with the terminating NUL. */
export const ifnameCharsMax = 15;

export interface TapPlan {
  name: string;
  bridge: string;
  vlan: number | null;
}

/** "tv" + the first 10 hex digits of the VM id + "n" + the NIC index: 14 characters for up to 10 NICs. */
export function tapName(vmId: string, index: number): string {
  const hex = vmId.replaceAll("-", "").toLowerCase();
  if (!/^[0-9a-f]{10}/.test(hex)) throw new NetError(`naming the tap of NIC ${index}: VM id ${vmId} does not start with 10 hex digits`);
  const name = `tv${hex.slice(0, 10)}n${index}`;
  if (name.length > ifnameCharsMax) throw new NetError(`naming the tap of NIC ${index} of VM ${vmId}: ${name} is longer than ${ifnameCharsMax} characters`);
  return name;
}

/** The taps of the VM's bridged NICs (user-mode NICs need none), by NIC index. */
export function planTaps(vmId: string, nics: ReadonlyArray<{ bridge: string; vlan: number | null }>): Map<number, TapPlan> {
  const plans = new Map<number, TapPlan>();
  nics.forEach((n, i) => {
    if (n.bridge !== "") plans.set(i, { name: tapName(vmId, i), bridge: n.bridge, vlan: n.vlan });
  });
  return plans;
}

/**
 * The commands that set a tap up, in order: create it, join the bridge, with a VLAN make it an
 * untagged member of only that VLAN (dropping the default VLAN 1), then bring it up.
 */
export function tapCommands(tap: TapPlan): Array<["ip" | "bridge", string[]]> {
  const cmds: Array<["ip" | "bridge", string[]]> = [
    ["ip", ["tuntap", "add", "dev", tap.name, "mode", "tap"]],
    ["ip", ["link", "set", "dev", tap.name, "master", tap.bridge]],
  ];
  if (tap.vlan !== null) {
    cmds.push(["bridge", ["vlan", "del", "dev", tap.name, "vid", "1"]]);
    cmds.push(["bridge", ["vlan", "add", "dev", tap.name, "vid", String(tap.vlan), "pvid", "untagged"]]);
  }
  cmds.push(["ip", ["link", "set", "dev", tap.name, "up"]]);
  return cmds;
}

/** Creates the tap (replacing a leftover of an earlier run) on its bridge; on failure removes it again. */
export async function createTap(run: NetRunner, tap: TapPlan): Promise<void> {
  const bridge = await showLink(run, tap.bridge);
  if (!bridge || bridge.linkinfo?.info_kind !== "bridge") throw new NetError(`creating tap ${tap.name}: bridge ${tap.bridge} does not exist on this node`);
  await deleteLink(run, tap.name);
  if (tap.vlan !== null) await ensureVlanFiltering(run, tap.bridge);
  try {
    for (const [tool, args] of tapCommands(tap)) await run(tool, args);
  } catch (err) {
    await deleteLink(run, tap.name).catch(() => undefined);
    throw new NetError(`creating tap ${tap.name} on bridge ${tap.bridge}: ${(err as Error).message}`, { cause: err });
  }
}

export async function removeTap(run: NetRunner, name: string): Promise<void> {
  await deleteLink(run, name);
}
