// Tests of the online disk grow against a fake QMP server that keeps a small block graph the way
// QEMU 7.2 does (checked by hand against qemu-system-x86_64 7.2 with two NBD servers): an NBD
// node's size is fixed when it connects; a node opened from the command line disappears once its
// parent lets go of it, one added by blockdev-add stays until blockdev-del; a node in use cannot
// be deleted; block_resize of a raw node cannot pass the size of its NBD child.
import { afterEach, describe, expect, it } from "vitest";
import { buildQemuArgv } from "./cmdline.ts";
import { diskNodesFromArgv, growDiskOnline } from "./disk-grow.ts";
import { keyValues, parseKeyValues } from "./options.ts";
import { FakeQmpServer, type FakeAnswer } from "./qmp/fake-server.ts";
import { QmpMonitor } from "./qmp/monitor.ts";
import type { DiskSpec, QemuHostFacts, VmSpec } from "./spec.ts";

const mib = 1024 * 1024;

interface Node { size: number; driver: string; file: string | null; monitorOwned: boolean }

/** The block graph of one disk in a fake QEMU; `exportBytes` is what a new NBD connection is told. */
class FakeGraph {
  nodes = new Map<string, Node>();
  exportBytes: number;
  refuseReopen = false;

  constructor(format: string, formatBytes: number, protocolName: string, protocolDriver = "nbd") {
    this.exportBytes = formatBytes;
    this.nodes.set(protocolName, { size: formatBytes, driver: protocolDriver, file: null, monitorOwned: false });
    this.nodes.set("drive-root", { size: formatBytes, driver: format, file: protocolName, monitorOwned: false });
  }

  private inUse(name: string): boolean {
    return [...this.nodes.values()].some((n) => n.file === name);
  }

  handle = (command: string, args: Record<string, unknown> | undefined): FakeAnswer => {
    const a = args ?? {};
    const err = (desc: string): FakeAnswer => ({ error: { class: "GenericError", desc } });
    switch (command) {
      case "query-named-block-nodes":
        return { return: [...this.nodes].map(([name, n]) => ({ "node-name": name, drv: n.driver, ro: false, image: { "virtual-size": n.size, format: n.driver } })) };
      case "blockdev-add":
        this.nodes.set(a["node-name"] as string, { size: this.exportBytes, driver: a.driver as string, file: null, monitorOwned: true });
        return { return: {} };
      case "blockdev-reopen": {
        if (this.refuseReopen) return err("Cannot change the option 'file'");
        const o = (a.options as Record<string, unknown>[])[0]!;
        const node = this.nodes.get(o["node-name"] as string)!;
        const old = node.file!;
        node.file = o.file as string;
        if (!this.nodes.get(old)!.monitorOwned) this.nodes.delete(old);
        return { return: {} };
      }
      case "blockdev-del": {
        const name = a["node-name"] as string;
        if (!this.nodes.has(name)) return err(`Failed to find node with node-name='${name}'`);
        if (this.inUse(name)) return err(`Node '${name}' is busy`);
        this.nodes.delete(name);
        return { return: {} };
      }
      case "block_resize": {
        const node = this.nodes.get(a["node-name"] as string)!;
        const child = this.nodes.get(node.file!)!;
        if (child.driver === "nbd" && a.size as number > child.size) return err("Cannot grow NBD nodes");
        node.size = a.size as number;
        if (child.driver === "file") child.size = node.size;
        return { return: {} };
      }
      default:
        return err(`unexpected ${command}`);
    }
  };
}

const facts: QemuHostFacts = { qemuVersion: "7.2.22", machineTypes: ["pc-q35-7.2"], accelerators: ["tcg"], cpuModels: [], vhostNet: false, ovmfCodePath: null };

function argvWith(disk: DiskSpec): string[] {
  const spec = {
    name: "web1", uuid: "8b0c3c1e-1d1f-4a3e-9d59-0c7f3a1b2c3d", vcpus: 1, memoryMiB: 128, machineType: "pc-q35-7.2", cpuModel: "max",
    firmware: { kind: "seabios" }, accelerator: "tcg", disks: [disk], cdrom: null, nics: [], serial: null, graphics: { kind: "none" },
    cloudInitIsoPath: null, kernelBoot: null, qmpSocketPath: "/run/t/qmp.sock", pidFile: "/run/t/qemu.pid",
  } as unknown as VmSpec;
  return buildQemuArgv(spec, facts);
}

const nbdDisk = (format: "raw" | "qcow2"): DiskSpec => ({
  id: "root", bus: "virtio-blk", cache: "writeback", readonly: false, bootIndex: 1, serial: null,
  source: { kind: "nbd", format, socketPath: "/var/lib/trivet/run/nbd.sock", exportName: "vol/web1,root" },
});

let fake: FakeQmpServer;
let monitor: QmpMonitor;
let graph: FakeGraph;

async function connect(g: FakeGraph): Promise<void> {
  graph = g;
  fake = await FakeQmpServer.start(g.handle);
  monitor = await QmpMonitor.connect(fake.socketPath, { name: "QMP of web1" });
}

afterEach(async () => {
  monitor?.close();
  await fake?.close();
});

const sent = () => fake.received.filter((r) => r.command !== "query-named-block-nodes");

describe("options of a disk's nodes from the argv", () => {
  it("reads back the builder's -blockdev with typed booleans, nested keys and an escaped comma", () => {
    const nodes = diskNodesFromArgv(argvWith(nbdDisk("raw")), "root");
    expect(nodes.format).toEqual({ driver: "raw", "node-name": "drive-root", "read-only": false, cache: { direct: false, "no-flush": false }, discard: "unmap" });
    expect(nodes.protocol).toEqual({
      driver: "nbd", server: { type: "unix", path: "/var/lib/trivet/run/nbd.sock" }, export: "vol/web1,root",
      "read-only": false, cache: { direct: false, "no-flush": false }, discard: "unmap",
    });
  });

  it("parseKeyValues inverts keyValues", () => {
    const entries: [string, string | undefined][] = [["virtio-blk-pci", undefined], ["id", "a,,b"], ["path", "/x=y"], ["z", ""]];
    expect(parseKeyValues(keyValues(entries))).toEqual(entries);
  });

  it("a disk QEMU was not started with is refused by name", () => {
    expect(() => diskNodesFromArgv(argvWith(nbdDisk("raw")), "data")).toThrow(/growing disk data: QEMU was started without a -blockdev node drive-data/);
  });
});

describe("growing a disk online", () => {
  it("attaches a new NBD connection, reopens the format node on it unchanged, and resizes", async () => {
    await connect(new FakeGraph("raw", 8 * mib, "nbd0-root"));
    graph.exportBytes = 16 * mib;
    const argv = argvWith(nbdDisk("raw"));
    await expect(growDiskOnline(monitor, argv, "root", { sizeBytes: 16 * mib, protocolBytes: 16 * mib })).resolves.toEqual({ outcome: "grown", leftovers: [] });
    const { format, protocol } = diskNodesFromArgv(argv, "root");
    expect(sent()).toEqual([
      { command: "blockdev-add", args: { ...protocol, "node-name": "nbd1-root" } },
      { command: "blockdev-reopen", args: { options: [{ ...format, file: "nbd1-root" }] } },
      // The command line's nbd0-root went with the reopen: nothing to delete.
      { command: "block_resize", args: { "node-name": "drive-root", size: 16 * mib } },
    ]);
    expect(graph.nodes.get("drive-root")).toMatchObject({ size: 16 * mib, file: "nbd1-root" });
    expect([...graph.nodes.keys()].sort()).toEqual(["drive-root", "nbd1-root"]);
  });

  it("a second grow deletes the connection the first one added", async () => {
    await connect(new FakeGraph("qcow2", 8 * mib, "nbd0-root"));
    const argv = argvWith(nbdDisk("qcow2"));
    graph.exportBytes = 20 * mib;
    expect((await growDiskOnline(monitor, argv, "root", { sizeBytes: 16 * mib, protocolBytes: 20 * mib })).outcome).toBe("grown");
    graph.exportBytes = 40 * mib;
    expect((await growDiskOnline(monitor, argv, "root", { sizeBytes: 32 * mib, protocolBytes: 40 * mib })).outcome).toBe("grown");
    expect(sent().map((r) => `${r.command} ${String(r.args?.["node-name"] ?? "")}`)).toEqual([
      "blockdev-add nbd1-root", "blockdev-reopen ", "block_resize drive-root",
      "blockdev-add nbd2-root", "blockdev-reopen ", "blockdev-del nbd1-root", "block_resize drive-root",
    ]);
    expect([...graph.nodes.keys()].sort()).toEqual(["drive-root", "nbd2-root"]);
    expect(graph.nodes.get("drive-root")!.size).toBe(32 * mib);
  });

  it("waits while a new connection still sees the old export size, leaving the graph as it was", async () => {
    await connect(new FakeGraph("raw", 8 * mib, "nbd0-root"));
    await expect(growDiskOnline(monitor, argvWith(nbdDisk("raw")), "root", { sizeBytes: 16 * mib, protocolBytes: 16 * mib })).resolves.toEqual({ outcome: "export-not-ready", leftovers: [] });
    expect(sent().map((r) => r.command)).toEqual(["blockdev-add", "blockdev-del"]);
    expect(graph.nodes.get("drive-root")).toMatchObject({ size: 8 * mib, file: "nbd0-root" });
    expect(graph.nodes.size).toBe(2);
  });

  it("does nothing when QEMU already has the size", async () => {
    await connect(new FakeGraph("raw", 16 * mib, "nbd0-root"));
    await expect(growDiskOnline(monitor, argvWith(nbdDisk("raw")), "root", { sizeBytes: 16 * mib, protocolBytes: 16 * mib })).resolves.toEqual({ outcome: "already", leftovers: [] });
    expect(sent()).toEqual([]);
  });

  it("a refused reopen removes the new connection and says what QEMU said", async () => {
    await connect(new FakeGraph("raw", 8 * mib, "nbd0-root"));
    graph.exportBytes = 16 * mib;
    graph.refuseReopen = true;
    await expect(growDiskOnline(monitor, argvWith(nbdDisk("raw")), "root", { sizeBytes: 16 * mib, protocolBytes: 16 * mib }))
      .rejects.toMatchObject({ code: "grow-refused", message: expect.stringMatching(/reopen drive-root.*Cannot change the option 'file'/) });
    expect([...graph.nodes.keys()].sort()).toEqual(["drive-root", "nbd0-root"]);
    expect(graph.nodes.get("drive-root")!.size).toBe(8 * mib);
  });

  it("a disk on a local file is only resized", async () => {
    await connect(new FakeGraph("qcow2", 8 * mib, "#block123", "file"));
    const disk: DiskSpec = { ...nbdDisk("qcow2"), source: { kind: "file", path: "/var/lib/trivet/images/x/root.qcow2", format: "qcow2" } };
    expect((await growDiskOnline(monitor, argvWith(disk), "root", { sizeBytes: 16 * mib, protocolBytes: 16 * mib })).outcome).toBe("grown");
    expect(sent()).toEqual([{ command: "block_resize", args: { "node-name": "drive-root", size: 16 * mib } }]);
  });
});
