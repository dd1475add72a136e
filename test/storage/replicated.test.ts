// The replicated volume layer on three real daemons, each in its own network namespace, driven
// by real clients (qemu-io and fio's nbd engine over the node's NBD unix socket): data written
// through one node is read back through another; a replica killed with SIGKILL during a
// verifying fio job does not stop the writes, is marked out of sync, and is healed when it
// returns; a partitioned coordinator cannot acknowledge writes while the majority side's new
// writer proceeds, and after the partition heals no replica diverges; a full brick drops its
// replica out (with the reason in the state) while the client keeps writing.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ImageService } from "../../core/api/gen/trivet/v1/storage_pb.ts";
import type { ApiClient } from "../../core/api/client.ts";
import { cli, DaemonCluster, nbdUri, type DaemonNode } from "../cluster/daemon-cluster.ts";
import { netnsAvailable, TestNetwork } from "../cluster/netns.ts";

const toolTimeoutMs = 120_000;
const healWaitMs = 90_000;
const rootOk = netnsAvailable();


function qemuIo(n: DaemonNode, exportName: string, command: string, timeoutMs = toolTimeoutMs) {
  const r = spawnSync("qemu-io", ["-f", "raw", "-c", command, nbdUri(n, exportName)], { encoding: "utf8", timeout: timeoutMs });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}${r.error ? String(r.error) : ""}` };
}

/** Runs fio against an export; resolves with its exit code and output. */
function fio(n: DaemonNode, exportName: string, args: string[]): { done: Promise<{ code: number; out: string }>; kill(): void } {
  const p = spawn("fio", ["--name=job", "--ioengine=nbd", `--uri=${nbdUri(n, exportName)}`, "--output-format=normal", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  p.stdout.on("data", (d: Buffer) => (out += d.toString()));
  p.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => p.kill("SIGKILL"), toolTimeoutMs);
  const done = new Promise<{ code: number; out: string }>((resolve) => p.once("exit", (code) => {
    clearTimeout(timer);
    resolve({ code: code ?? -1, out });
  }));
  return { done, kill: () => p.kill("SIGKILL") };
}

describe.skipIf(!rootOk)("replicated images on three daemons in network namespaces", () => {
  const c = new DaemonCluster();
  let net: TestNetwork;
  const nodes: DaemonNode[] = [];
  let api: ApiClient;
  let conn: string[];

  async function image(name: string, volume = "vol") {
    return (await api.call(ImageService, "getImage", { volume, name })).image!;
  }

  async function waitAllInSync(name: string, volume = "vol"): Promise<number> {
    const started = Date.now();
    await DaemonCluster.retry(async () => {
      const i = await image(name, volume);
      const behind = i.replicas.filter((r) => !r.inSync).map((r) => `${r.nodeName} (${r.healDoneBytes}/${r.healTotalBytes})`);
      if (behind.length > 0) throw new Error(`replicas out of sync: ${behind.join(", ")}`);
    }, healWaitMs, 500);
    return Date.now() - started;
  }

  function verify(name: string, volume = "vol") {
    return cli(["image", "verify", name, "--volume", volume, ...conn]);
  }

  /** A 16 MiB file system for one brick, mounted before the daemons start: `ip netns exec`
   * gives each daemon its own mount namespace, which later mounts may not reach. */
  const smallBrick = path.join(c.dir, "small-n3");

  beforeAll(async () => {
    fs.mkdirSync(smallBrick, { recursive: true });
    const m = spawnSync("mount", ["-t", "tmpfs", "-o", "size=16m", "tmpfs", smallBrick], { encoding: "utf8" });
    expect(m.status, m.stderr).toBe(0);
    net = new TestNetwork(61);
    const started = await c.startThreeWithVolume((name) => {
      const ns = net.add(name);
      return { host: ns.address, exec: net.exec(name) };
    });
    nodes.push(...started.nodes);
    ({ api, conn } = started);
  }, 240_000);

  afterAll(async () => {
    api?.close();
    spawnSync("umount", ["-l", smallBrick]);
    await c.stop();
    net?.destroy();
  });

  async function createImage(name: string, size: string, volume = "vol"): Promise<void> {
    const r = cli(["image", "create", name, "--volume", volume, "--size", size, ...conn]);
    expect(r.code, r.stderr).toBe(0);
    // Every node's storage agent makes its file; the export is listed once it has (listing
    // opens nothing, so no node takes the writer epoch here).
    for (const n of nodes) {
      await DaemonCluster.retry(async () => {
        const r = spawnSync("qemu-nbd", ["--list", "-k", path.join(n.dataDir, "run", "nbd.sock")], { encoding: "utf8", timeout: 20_000 });
        if (!r.stdout.includes(`export: '${volume}/${name}'`)) throw new Error(`export ${volume}/${name} not listed on ${n.name}: ${r.stdout}${r.stderr}`);
      }, 30_000, 500);
    }
  }

  it("serves writes through one node and the same data through another; verify is clean", async () => {
    await createImage("a", "64M");
    const w = qemuIo(nodes[0]!, "vol/a", "write -P 0xab 1M 3M");
    expect(w.code, w.out).toBe(0);
    const r = qemuIo(nodes[2]!, "vol/a", "read -P 0xab 1M 3M");
    expect(r.code, r.out).toBe(0);
    expect(r.out).not.toMatch(/Pattern verification failed/);
    const zero = qemuIo(nodes[1]!, "vol/a", "read -P 0 0 1M");
    expect(zero.code, zero.out).toBe(0);
    const v = verify("a");
    expect(v.code, v.stdout + v.stderr).toBe(0);
    const i = await image("a");
    expect(i.replicas.every((x) => x.inSync)).toBe(true);
    expect(Number(i.writerEpoch)).toBeGreaterThanOrEqual(3);
  }, 180_000);

  it("keeps writing when a replica is killed during a verifying fio job, then heals it", async () => {
    await createImage("b", "256M");
    const job = fio(nodes[0]!, "vol/b", ["--rw=randwrite", "--bs=4k", "--iodepth=16", "--size=160M", "--verify=crc32c", "--verify_fatal=1", "--do_verify=1"]);
    await new Promise((r) => setTimeout(r, 1500));
    await c.kill(nodes[2]!);
    const result = await job.done;
    expect(result.code, result.out).toBe(0);
    expect(result.out).not.toMatch(/verify: bad|verify failed|err=\s*[1-9]/);
    expect(result.out).toMatch(/err=\s*0/);
    const during = await image("b");
    expect(during.replicas.find((x) => x.nodeName === "n3")?.inSync).toBe(false);
    // fio has closed the image; once its coordinator let it go cleanly, the regions n3 missed are
    // in the replicated state, and the node that takes the idle image to heal it (at once: a new
    // epoch) copies just those.
    await DaemonCluster.retry(async () => {
      const i = await image("b");
      const released = Number(i.writerNodeId) === 0 || i.writerEpoch > during.writerEpoch;
      if (!released) throw new Error(`vol/b is still held by node ${i.writerNodeId} at epoch ${i.writerEpoch}`);
    }, 30_000, 200);
    c.serve(nodes[2]!);
    const healMs = await waitAllInSync("b");
    console.log(`replica n3 of vol/b healed ${healMs} ms after its daemon restarted`);
    const healed = nodes.flatMap((n) => fs.readFileSync(n.log, "utf8").split("\n"))
      .filter((l) => l.includes('"replica healed"') && l.includes('"vol/b"'))
      .map((l) => JSON.parse(l) as { copiedBytes: number; comparedBytes: number });
    expect(healed.length, "a replica healed log line for vol/b").toBeGreaterThan(0);
    const last = healed[healed.length - 1]!;
    expect(last.comparedBytes, "the heal copied the dirty regions, it did not compare the image").toBe(0);
    expect(last.copiedBytes).toBeGreaterThan(0);
    expect(last.copiedBytes).toBeLessThanOrEqual(256 * 1024 * 1024);
    const v = verify("b");
    expect(v.code, v.stdout + v.stderr).toBe(0);
  }, 300_000);

  it("a partitioned coordinator cannot acknowledge writes; the majority's writer proceeds; nothing diverges", async () => {
    await createImage("c", "64M");
    const seed = qemuIo(nodes[0]!, "vol/c", "write -P 0x11 0 4M");
    expect(seed.code, seed.out).toBe(0);
    // n1 holds the image open (a slow writer) while it is cut off.
    const writer = fio(nodes[0]!, "vol/c", ["--rw=write", "--bs=64k", "--iodepth=4", "--size=4M", "--offset=8M", "--time_based", "--runtime=60", "--pattern=0x22"]);
    await new Promise((r) => setTimeout(r, 1000));
    net.partition("n1");
    try {
      // The majority side takes over: n2 writes and reads its own pattern.
      const w = qemuIo(nodes[1]!, "vol/c", "write -P 0x33 0 1M");
      expect(w.code, w.out).toBe(0);
      const r = qemuIo(nodes[2]!, "vol/c", "read -P 0x33 0 1M");
      expect(r.code, r.out).toBe(0);
    } finally {
      net.heal("n1");
    }
    writer.kill();
    const old = await writer.done;
    expect(old.code).not.toBe(0);
    await waitAllInSync("c");
    const after = qemuIo(nodes[0]!, "vol/c", "read -P 0x33 0 1M");
    expect(after.code, after.out).toBe(0);
    const v = verify("c");
    expect(v.code, v.stdout + v.stderr).toBe(0);
  }, 300_000);
  it("a full brick drops its replica out with the reason while the client keeps writing", async () => {
    const dir = smallBrick;
    try {
      const v = cli(["volume", "create", "small", "--bricks", `n3=${dir}`, ...conn]);
      expect(v.code, v.stderr).toBe(0);
      await createImage("d", "64M", "small");
      const job = fio(nodes[0]!, "small/d", ["--rw=write", "--bs=1M", "--iodepth=4", "--size=40M", "--verify=crc32c", "--verify_fatal=1", "--do_verify=1"]);
      const result = await job.done;
      expect(result.code, result.out).toBe(0);
      const i = await image("d", "small");
      const n3 = i.replicas.find((x) => x.nodeName === "n3");
      expect(n3?.inSync).toBe(false);
      expect(n3?.reason).toMatch(/space|full/i);
      expect(i.replicas.filter((x) => x.inSync)).toHaveLength(2);
    } finally {
      spawnSync("rm", ["-rf", path.join(dir, "images")]);
    }
  }, 240_000);
});
