// Taps and bridges: names within IFNAMSIZ and stable per VM and NIC, the command plan with and
// without a VLAN, and — as root — the real thing in a network namespace this test creates and
// deletes: a bridge is listed, a tap joins it as an untagged member of its VLAN only, and is gone
// after removal.
import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBridge, deleteLink, hostNetRunner, listBridges, NetError, showLink } from "./bridge.ts";
import { createTap, ifnameCharsMax, planTaps, removeTap, tapCommands, tapName } from "./tap.ts";

const vmId = "5f0c7c2e-8d1a-4b7e-9c3f-2a6d8e4b1c90";

describe("tap names and commands", () => {
  it("derives a short, stable name per VM and NIC index", () => {
    expect(tapName(vmId, 0)).toBe("tv5f0c7c2e8dn0");
    expect(tapName(vmId, 7).length).toBeLessThanOrEqual(ifnameCharsMax);
    expect(tapName(vmId, 1)).not.toBe(tapName(vmId, 0));
    expect(tapName("6f0c7c2e-8d1a-4b7e-9c3f-2a6d8e4b1c90", 0)).not.toBe(tapName(vmId, 0));
    expect(() => tapName("not-a-uuid", 0)).toThrow(NetError);
  });

  it("plans taps only for bridged NICs, keeping their index", () => {
    const plans = planTaps(vmId, [{ bridge: "", vlan: null }, { bridge: "vmbr0", vlan: 42 }]);
    expect([...plans.keys()]).toEqual([1]);
    expect(plans.get(1)).toEqual({ name: tapName(vmId, 1), bridge: "vmbr0", vlan: 42 });
  });

  it("makes a tagged tap an untagged member of its VLAN only", () => {
    const tagged = tapCommands({ name: "tvx", bridge: "vmbr0", vlan: 42 }).map(([t, a]) => `${t} ${a.join(" ")}`);
    expect(tagged).toEqual([
      "ip tuntap add dev tvx mode tap", "ip link set dev tvx master vmbr0", "bridge vlan del dev tvx vid 1",
      "bridge vlan add dev tvx vid 42 pvid untagged", "ip link set dev tvx up",
    ]);
    expect(tapCommands({ name: "tvx", bridge: "vmbr0", vlan: null }).some(([t]) => t === "bridge")).toBe(false);
  });
});

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn("tap.test.ts: skipping the network-namespace test: it needs root (ip netns add)");

describe.skipIf(!isRoot)("bridges and taps in a network namespace", () => {
  const netns = `trivet-tap-${process.pid}`;
  const run = hostNetRunner({ netns });

  beforeAll(() => {
    execFileSync("ip", ["netns", "add", netns]);
  });
  afterAll(() => {
    execFileSync("ip", ["netns", "del", netns]);
  });

  it("creates a tap on a bridge and removes it", async () => {
    await createBridge(run, "vmbr0");
    expect(await listBridges(run)).toEqual(["vmbr0"]);
    const tap = { name: tapName(vmId, 0), bridge: "vmbr0", vlan: null };
    await createTap(run, tap);
    // Created twice (an agent restarting after a crash): the leftover is replaced, not an error.
    await createTap(run, tap);
    const link = await showLink(run, tap.name);
    expect(link?.master).toBe("vmbr0");
    expect(link?.linkinfo?.info_kind).toBe("tun");
    await removeTap(run, tap.name);
    expect(await showLink(run, tap.name)).toBeNull();
    await deleteLink(run, "vmbr0");
    expect(await listBridges(run)).toEqual([]);
  });

  it("puts a tagged tap on its VLAN only, or says the kernel cannot", async () => {
    await createBridge(run, "vmbr1");
    const tap = { name: tapName(vmId, 1), bridge: "vmbr1", vlan: 42 };
    const supported = await run("ip", ["link", "add", "name", "vfprobe", "type", "bridge", "vlan_filtering", "1"]).then(() => true, () => false);
    await deleteLink(run, "vfprobe");
    if (!supported) {
      console.warn("tap.test.ts: this kernel has no bridge VLAN filtering; checking only the error a tagged NIC gets");
      await expect(createTap(run, tap)).rejects.toThrow(/VLAN filtering of bridge vmbr1 .*CONFIG_BRIDGE_VLAN_FILTERING/);
      expect(await showLink(run, tap.name)).toBeNull();
    } else {
      await createTap(run, tap);
      expect((await showLink(run, "vmbr1"))?.linkinfo?.info_data?.vlan_filtering).toBe(1);
      const vlans = JSON.parse(await run("bridge", ["-j", "vlan", "show", "dev", tap.name])) as Array<{ ifname: string; vlans: Array<{ vlan: number; flags?: string[] }> }>;
      expect(vlans.find((v) => v.ifname === tap.name)?.vlans).toEqual([{ vlan: 42, flags: ["PVID", "Egress Untagged"] }]);
      await removeTap(run, tap.name);
    }
    await deleteLink(run, "vmbr1");
  });

  it("refuses a tap on a bridge that does not exist, naming it", async () => {
    await expect(createTap(run, { name: "tvnobridge0", bridge: "vmbr9", vlan: null })).rejects.toThrow(/bridge vmbr9 does not exist/);
    expect(await showLink(run, "tvnobridge0")).toBeNull();
  });
});
