// Network namespaces for multi-node fault tests on one machine: each node gets its own namespace
// with a veth pair onto a test bridge in the root namespace (10.77.<net>.1/24 there, .11, .12 …
// for the nodes), so a test can partition one node from the others by taking its link down and
// heal it by bringing the link back — real TCP timeouts and resets, not a simulated network.
// Unix sockets (NBD exports, QEMU monitors) cross namespaces, so local clients keep working.
// Needs root; everything created is named with a per-run prefix and removed by destroy().
import { spawnSync } from "node:child_process";

const ipTimeoutMs = 10_000;

export class NetnsError extends Error {
  readonly code = "netns";
}

function ip(args: string[]): void {
  const r = spawnSync("ip", args, { encoding: "utf8", timeout: ipTimeoutMs });
  if (r.status !== 0) throw new NetnsError(`ip ${args.join(" ")}: ${(r.stderr || r.error?.message || "failed").trim()}`);
}

/** True when this process may create namespaces (root with iproute2). */
export function netnsAvailable(): boolean {
  if (process.getuid?.() !== 0) return false;
  return spawnSync("ip", ["netns", "list"], { timeout: ipTimeoutMs }).status === 0;
}

export interface NetnsNode {
  name: string;
  /** The namespace, for `ip netns exec`. */
  ns: string;
  address: string;
}

export class TestNetwork {
  readonly bridge: string;
  readonly nodes = new Map<string, NetnsNode>();
  private readonly prefix: string;
  private readonly subnet: string;

  /** `net` (1–250) keeps concurrent test files apart; pick one per file. */
  constructor(net: number) {
    this.prefix = `tv${net}${process.pid % 1000}`;
    this.bridge = `${this.prefix}br`;
    this.subnet = `10.77.${net}`;
    ip(["link", "add", this.bridge, "type", "bridge"]);
    ip(["addr", "add", `${this.subnet}.1/24`, "dev", this.bridge]);
    ip(["link", "set", this.bridge, "up"]);
  }

  add(name: string): NetnsNode {
    const i = this.nodes.size + 1;
    const ns = `${this.prefix}n${i}`;
    const host = `${this.prefix}h${i}`;
    const address = `${this.subnet}.${10 + i}`;
    ip(["netns", "add", ns]);
    ip(["link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns]);
    ip(["link", "set", host, "master", this.bridge, "up"]);
    ip(["-n", ns, "addr", "add", `${address}/24`, "dev", "eth0"]);
    ip(["-n", ns, "link", "set", "eth0", "up"]);
    ip(["-n", ns, "link", "set", "lo", "up"]);
    const node = { name, ns, address };
    this.nodes.set(name, node);
    return node;
  }

  /** Argv prefix that runs a command inside the node's namespace. */
  exec(name: string): string[] {
    return ["ip", "netns", "exec", this.node(name).ns];
  }

  /** Cuts the node off the network (every peer and client over TCP). */
  partition(name: string): void {
    ip(["-n", this.node(name).ns, "link", "set", "eth0", "down"]);
  }

  heal(name: string): void {
    ip(["-n", this.node(name).ns, "link", "set", "eth0", "up"]);
  }

  private node(name: string): NetnsNode {
    const n = this.nodes.get(name);
    if (!n) throw new NetnsError(`no node ${name} in the test network`);
    return n;
  }

  destroy(): void {
    for (const n of this.nodes.values()) spawnSync("ip", ["netns", "del", n.ns], { timeout: ipTimeoutMs });
    spawnSync("ip", ["link", "del", this.bridge], { timeout: ipTimeoutMs });
    this.nodes.clear();
  }
}
