// `npm run bench:heal`: how long a replica that missed 1 GiB of writes takes to heal. Three real
// daemons (storage-trivet.ts); node n3 is killed, fio writes the whole 1 GiB image through n1
// (so every extent of n3's copy is dirty), n3 is started again, and the time until the
// replicated state calls its copy in sync again is measured, together with the heal's own
// duration from the healer's log. By default a qemu-io process keeps the image open throughout, as
// a running guest would: n1 stays its coordinator and heals from its dirty map. BENCH_HEAL_IDLE=1
// lets the image go once fio is done, as a guest that was shut down would: n1 releases it with the
// dirty regions in the replicated state, and the node that heals the idle image resumes them.
// Last line JSON: {"bench":"heal","dirty_mib":…,"heal_ms":…,"heal_mode":…,"idle":…,…}.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import { ImageService } from "../../core/api/gen/trivet/v1/storage_pb.ts";
import { DaemonCluster } from "../cluster/daemon-cluster.ts";
import { startTrivetTarget, trivetImage, trivetVolume } from "./storage-trivet.ts";

const fioTimeoutMs = 300_000;
const healTimeoutMs = 600_000;
const pollMs = 100;
const releaseTimeoutMs = 30_000;
const dirtyMiB = 1024;
const idle = process.env.BENCH_HEAL_IDLE === "1";

async function main(): Promise<void> {
  const t = await startTrivetTarget();
  const n1 = t.nodes[0]!;
  const n3 = t.nodes[2]!;
  const api = t.cluster.client(n1);
  // The "guest": an idle qemu-io holding an NBD connection until told to quit.
  const holder = idle ? null : spawn("qemu-io", ["-f", "raw", t.uri], { stdio: ["pipe", "ignore", "inherit"] });
  const getImage = async () => (await api.call(ImageService, "getImage", { volume: trivetVolume, name: trivetImage })).image!;
  try {
    await t.cluster.kill(n3);
    const fio = spawnSync("fio", ["--name=dirty", "--ioengine=nbd", `--uri=${t.uri}`, "--rw=write", "--bs=1M", "--iodepth=16", `--size=${dirtyMiB}M`, "--output-format=terse"], { encoding: "utf8", timeout: fioTimeoutMs });
    if (fio.status !== 0) throw new Error(`fio writing the dirty data: ${fio.stderr || fio.stdout}`);
    const before = await getImage();
    const n3Replica = before.replicas.find((r) => r.nodeName === "n3");
    if (n3Replica?.inSync !== false) throw new Error("n3's copy is still in sync after writes without it: the bench measured nothing");
    if (idle) {
      // Released by fio's coordinator (and maybe at once taken again, at a new epoch, by the node that heals idle images).
      await DaemonCluster.retry(async () => {
        const i = await getImage();
        if (Number(i.writerNodeId) !== 0 && i.writerEpoch === before.writerEpoch) throw new Error(`the image is still held by node ${i.writerNodeId}`);
      }, releaseTimeoutMs, pollMs);
    }
    const logStarts = t.nodes.map((n) => fs.statSync(n.log).size);
    const started = performance.now();
    t.cluster.serve(n3);
    await DaemonCluster.retry(async () => {
      const i = await getImage();
      if (!i.replicas.every((r) => r.inSync)) throw new Error("not in sync yet");
    }, healTimeoutMs, pollMs);
    const healMs = Math.round(performance.now() - started);
    const verified = await api.call(ImageService, "verifyImage", { volume: trivetVolume, name: trivetImage });
    if (!verified.consistent) throw new Error(`after the heal the copies differ: ${JSON.stringify(verified.mismatches.slice(0, 5).map((m) => Number(m.offset)))}`);
    console.log(`verify after the heal: ${verified.replicas.length} copies, consistent`);
    const log = t.nodes.flatMap((n, k) => fs.readFileSync(n.log, "utf8").slice(logStarts[k]).split("\n")).filter((l) => l.includes("\"replica healed\""));
    const healed = log.length > 0 ? (JSON.parse(log[log.length - 1]!) as { ms: number; copiedBytes: number; comparedBytes: number }) : null;
    const mode = healed === null ? null : healed.comparedBytes > 0 ? "compare" : "dirty";
    const copyMs = healed?.ms ?? null;
    console.log(`n3 back in sync ${healMs} ms after its daemon was started (daemon start + reconnect + heal)`);
    if (healed) console.log(`heal itself: ${healed.copiedBytes / 2 ** 20} MiB copied in ${healed.ms} ms = ${(healed.copiedBytes / 2 ** 20 / (healed.ms / 1000)).toFixed(0)} MiB/s, ${mode} heal${mode === "compare" ? ` (${healed.comparedBytes / 2 ** 20} MiB compared)` : ""} (throttle: 200 MiB/s default)`);
    console.log(JSON.stringify({ bench: "heal", dirty_mib: dirtyMiB, heal_ms: healMs, heal_copy_ms: copyMs, heal_mode: mode, idle, copied_mib: healed ? healed.copiedBytes / 2 ** 20 : null, loadavg1m: Number((await import("node:os")).loadavg()[0]!.toFixed(2)) }));
  } finally {
    holder?.stdin.end("quit\n");
    api.close();
    await t.stop();
  }
}

main().catch((err: unknown) => {
  console.error(`bench:heal failed: ${(err as Error).message}`);
  process.exit(1);
});
