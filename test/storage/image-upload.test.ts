// `trivet image upload` on a cluster of three real daemons: a random file (5 MiB and a few
// bytes, so the image is rounded up to whole sectors) uploaded through one node becomes a ready
// iso image, and reading it back through another node's NBD export with qemu-img gives the file
// byte for byte, zeros after it; the event stream of a third node carries storage.image created
// and ready. Bad input (missing file, a name that breaks the rule, an unknown volume) is refused
// with a clear message and creates nothing; Ctrl-C during an upload deletes the partial image.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ApiClient } from "../../core/api/client.ts";
import { EventService, type Event } from "../../core/api/gen/trivet/v1/events_pb.ts";
import { ImageService, VolumeService } from "../../core/api/gen/trivet/v1/storage_pb.ts";
import { cli, DaemonCluster, nbdSocket, trivetArgv, type DaemonNode } from "../cluster/daemon-cluster.ts";

const MiB = 1024 * 1024;
const exportWaitMs = 30_000;
const eventWaitMs = 10_000;
const qemuImgTimeoutMs = 60_000;
const interruptedUploadTimeoutMs = 90_000;

describe("trivet image upload on a three-daemon cluster", () => {
  const c = new DaemonCluster();
  const nodes: DaemonNode[] = [];
  let api: ApiClient;
  let conn: string[];
  const events: Event[] = [];
  const watching = new AbortController();

  const imageNames = async () => (await api.call(ImageService, "listImages", {})).images.map((i) => `${i.volume}/${i.name}`);

  beforeAll(async () => {
    nodes.push(...(await c.startThree()));
    api = c.client(nodes[0]!, { linearizable: true });
    conn = c.conn(nodes[1]!);
    await api.call(VolumeService, "createVolume", { name: "lib" });
    const watcher = c.client(nodes[2]!);
    void watcher.stream(EventService, "watch", { kinds: ["storage.image"], objectPrefix: "image/lib/" }, (e) => void events.push(e), watching.signal)
      .catch(() => undefined).finally(() => watcher.close());
    // The CLI runs with this process blocked (spawnSync): the stream must be live before it does.
    await api.call(ImageService, "createImage", { volume: "lib", name: "probe", sizeBytes: 512n });
    await DaemonCluster.retry(async () => {
      if (!events.some((e) => e.object === "image/lib/probe")) throw new Error("the event stream carries no storage.image event yet");
    }, eventWaitMs);
    await api.call(ImageService, "deleteImage", { volume: "lib", name: "probe" });
  });

  afterAll(async () => {
    watching.abort();
    api?.close();
    await c.stop();
  });

  it("uploads a file that reads back through another node's NBD export byte for byte", async () => {
    const content = randomBytes(5 * MiB + 300);
    const file = path.join(c.dir, "Random-5M.ISO");
    fs.writeFileSync(file, content);
    const r = cli(["image", "upload", file, "--volume", "lib", "--output", "json", ...conn]);
    expect(r.code, r.stderr).toBe(0);
    const image = (JSON.parse(r.stdout) as { image: { name: string; volume: string; kind: string; format: string; state: string; sizeBytes: number } }).image;
    expect(image).toMatchObject({ name: "random-5m.iso", volume: "lib", kind: "iso", format: "raw", state: "ready", sizeBytes: 5 * MiB + 512 });
    // Not a terminal: plain progress lines on stderr, ending complete.
    expect(r.stderr).not.toContain("\r");
    expect(r.stderr.trim().split("\n").at(-1)).toMatch(/^lib\/random-5m\.iso\s+100%\s+5 MiB \/ 5 MiB\s+\d+\.\d MiB\/s$/);

    const out = path.join(c.dir, "readback.raw");
    const socket = nbdSocket(nodes[0]!);
    await DaemonCluster.retry(async () => {
      fs.rmSync(out, { force: true });
      const q = spawnSync("qemu-img", ["convert", "-f", "raw", "-O", "raw", `nbd+unix:///lib/random-5m.iso?socket=${socket}`, out], { encoding: "utf8", timeout: qemuImgTimeoutMs });
      if (q.status !== 0) throw new Error(`qemu-img convert: ${q.stderr}${q.error ? String(q.error) : ""}`);
    }, exportWaitMs, 500);
    const back = fs.readFileSync(out);
    expect(back.length).toBe(5 * MiB + 512);
    expect(back.subarray(0, content.length).equals(content)).toBe(true);
    expect(back.subarray(content.length).every((b) => b === 0)).toBe(true);

    await DaemonCluster.retry(async () => {
      const seen = events.filter((e) => e.object === "image/lib/random-5m.iso").map((e) => e.fields.change);
      if (!seen.includes("created") || !seen.includes("ready")) throw new Error(`storage.image events so far: ${seen.join(", ")}`);
    }, eventWaitMs);
  });

  it("refuses bad input with a clear message and creates nothing", async () => {
    const before = await imageNames();
    const missing = cli(["image", "upload", path.join(c.dir, "nope.iso"), "--volume", "lib", ...conn]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^trivet image upload: upload_input: reading .*nope\.iso: no such file\n$/);
    const spaced = path.join(c.dir, "My Disk.iso");
    fs.writeFileSync(spaced, randomBytes(4096));
    const fromFile = cli(["image", "upload", spaced, "--volume", "lib", ...conn]);
    expect(fromFile.code).toBe(1);
    expect(fromFile.stderr).toMatch(/image name "my disk\.iso" must be .* \(from the file name "My Disk\.iso"\); pass --name NAME/);
    const badName = cli(["image", "upload", spaced, "--volume", "lib", "--name", "Bad_Name", ...conn]);
    expect(badName.code).toBe(1);
    expect(badName.stderr).toMatch(/image name "Bad_Name" must be 1 to 128 characters/);
    const noVolume = cli(["image", "upload", spaced, "--volume", "nope", "--name", "ok.iso", ...conn]);
    expect(noVolume.code).toBe(1);
    expect(noVolume.stderr).toMatch(/not_found: volume "nope" does not exist/);
    expect(await imageNames()).toEqual(before);
  });

  it("deletes the partial image when the upload is interrupted with Ctrl-C", async () => {
    const file = path.join(c.dir, "big.iso");
    fs.writeFileSync(file, randomBytes(MiB));
    fs.truncateSync(file, 1024 * MiB);
    const [cmd, argv] = trivetArgv(["image", "upload", file, "--volume", "lib", ...conn]);
    const p = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    let signalled = false;
    const killer = setTimeout(() => p.kill("SIGKILL"), interruptedUploadTimeoutMs);
    p.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      // A progress line past 0%: chunks were written, so the node holds the image for the upload.
      if (!signalled && /lib\/big\.iso\s+[1-9]\d*%/.test(stderr)) {
        signalled = true;
        p.kill("SIGINT");
      }
    });
    const code = await new Promise<number | null>((resolve) => p.once("exit", (exitCode) => resolve(exitCode)));
    clearTimeout(killer);
    expect(signalled, stderr).toBe(true);
    expect(code, stderr).toBe(1);
    expect(stderr).toMatch(/upload_interrupted: uploading image lib\/big\.iso: upload interrupted: interrupted after \d+ of 1073741824 bytes; deleted the partial image lib\/big\.iso/);
    expect(await imageNames()).not.toContain("lib/big.iso");
  });
});
