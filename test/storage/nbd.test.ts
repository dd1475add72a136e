// The NBD server with a file brick against real clients over nbd+unix://: qemu-img, qemu-io and
// fio's nbd engine with crc32c verification (within one run, and across two runs: what one
// connection wrote, a later one reads back), an export named like the daemon's
// `<volume>/<image>` exports, and an unknown export name. The server runs in this process, so
// every client is spawned asynchronously (a synchronous spawn would starve the server).
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FileBackend } from "../../storage/brick/file-backend.ts";
import { NbdServer } from "../../storage/nbd/server.ts";

const toolTimeoutMs = 120_000;
const fioRuntimeS = 3;
const disconnectTimeoutMs = 10_000;
const mib = 1024 * 1024;
const imageBytes = 64 * mib;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: toolTimeoutMs, maxBuffer: 16 * mib }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === "number" ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

interface FioJob {
  error: number;
  write: { io_bytes: number };
  read: { io_bytes: number };
}

function parseJob(stdout: string): FioJob {
  const job = (JSON.parse(stdout.slice(stdout.indexOf("{"))) as { jobs: FioJob[] }).jobs[0];
  if (job === undefined) throw new Error(`no job in fio output: ${stdout.slice(0, 500)}`);
  return job;
}

let dir = "";
let server: NbdServer;
let backend: FileBackend;
let slashBackend: FileBackend;
let uri = "";
let slashUri = "";

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "trivet-nbd-it-"));
  backend = await FileBackend.open({ path: join(dir, "image.raw"), sizeBytes: imageBytes });
  slashBackend = await FileBackend.open({ path: join(dir, "slash.raw"), sizeBytes: imageBytes });
  server = new NbdServer({ socketPath: join(dir, "nbd.sock") });
  server.addExport("disk", backend);
  server.addExport("bench/disk1", slashBackend);
  await server.listen();
  uri = `nbd+unix:///disk?socket=${join(dir, "nbd.sock")}`;
  slashUri = `nbd+unix:///bench/disk1?socket=${join(dir, "nbd.sock")}`;
});

afterAll(async () => {
  await server.close();
  await backend.close();
  await slashBackend.close();
  await rm(dir, { recursive: true, force: true });
});

describe("NBD server with real clients", () => {
  it("qemu-img info sees the export's size", async () => {
    const r = await run("qemu-img", ["info", "--output=json", uri]);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { "virtual-size": number })["virtual-size"]).toBe(imageBytes);
  });

  it("qemu-io writes, reads back, zeroes, discards and flushes", async () => {
    const cmds = [
      "write -P 0xab 0 1M",
      "read -P 0xab 0 1M",
      "write -f -P 0xcd 1000 5000",
      "read -P 0xcd 1000 5000",
      "write -z 2M 2M",
      "read -P 0 2M 2M",
      "discard 8M 4M",
      "flush",
    ];
    const r = await run("qemu-io", ["-f", "raw", ...cmds.flatMap((c) => ["-c", c]), uri]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toMatch(/Pattern verification failed|failed/i);
    expect(r.stdout).toMatch(/read 5000\/5000 bytes at offset 1000/);
  });

  it("qemu-img convert copies a random 16 MiB file in and out unchanged", async () => {
    const src = join(dir, "src.raw");
    const back = join(dir, "back.raw");
    const data = randomBytes(16 * mib);
    await writeFile(src, data);
    const into = await run("qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", src, uri]);
    expect(into.code, into.stderr).toBe(0);
    const out = await run("qemu-img", ["convert", "-f", "raw", "-O", "raw", uri, back]);
    expect(out.code, out.stderr).toBe(0);
    const got = await readFile(back);
    expect(got.length).toBe(imageBytes);
    expect(got.subarray(0, data.length).equals(data)).toBe(true);
  });

  for (const [name, rw, bs, depth, jobs] of [
    ["4k random writes, QD32", "randwrite", "4k", "32", 1],
    ["1 MiB sequential writes, QD16", "write", "1M", "16", 1],
    ["4k random writes from 4 connections at once", "randwrite", "4k", "8", 4],
  ] as const) {
    it(`fio ${name} verify with crc32c`, async () => {
      const r = await run("fio", [
        "--name=verify",
        "--ioengine=nbd",
        `--uri=${uri}`,
        `--rw=${rw}`,
        `--bs=${bs}`,
        `--iodepth=${depth}`,
        `--size=${32 / jobs}M`,
        `--numjobs=${jobs}`,
        `--offset_increment=${32 / jobs}M`,
        "--group_reporting",
        "--verify=crc32c",
        "--do_verify=1",
        "--verify_fatal=1",
        "--verify_backlog=256",
        `--runtime=${fioRuntimeS}`,
        "--output-format=json",
      ]);
      expect(r.code, r.stderr + r.stdout.slice(-2000)).toBe(0);
      const job = parseJob(r.stdout);
      expect(job.error).toBe(0);
      expect(job.write.io_bytes).toBe(32 * mib);
      expect(job.read.io_bytes).toBe(32 * mib); // every block was read back and verified
    });
  }

  it("fio reads back and verifies in a second run what a first run wrote", async () => {
    const common = ["--ioengine=nbd", `--uri=${uri}`, "--rw=randwrite", "--bs=4k", "--iodepth=16", "--offset=32M", "--size=8M", "--verify=crc32c", "--randrepeat=1", "--output-format=json"];
    const write = await run("fio", ["--name=w", ...common, "--do_verify=0"]);
    expect(write.code, write.stderr).toBe(0);
    const check = await run("fio", ["--name=w", ...common, "--verify_only", "--verify_fatal=1"]);
    expect(check.code, check.stderr + check.stdout.slice(-2000)).toBe(0);
    expect(parseJob(check.stdout).read.io_bytes).toBe(8 * mib);
    // The same check over blocks the first run never wrote must fail, or the check proves nothing.
    const other = await run("fio", ["--name=w", ...common.map((a) => (a === "--offset=32M" ? "--offset=48M" : a)), "--verify_only", "--verify_fatal=1"]);
    expect(other.code).not.toBe(0);
  });

  it("serves an export named <volume>/<image> to qemu-img and to fio with crc32c verify", async () => {
    const info = await run("qemu-img", ["info", "--output=json", slashUri]);
    expect(info.code, info.stderr).toBe(0);
    expect((JSON.parse(info.stdout) as { "virtual-size": number })["virtual-size"]).toBe(imageBytes);
    const r = await run("fio", ["--name=slash", "--ioengine=nbd", `--uri=${slashUri}`, "--rw=randwrite", "--bs=4k", "--iodepth=8", "--size=8M", "--verify=crc32c", "--do_verify=1", "--verify_fatal=1", "--output-format=json"]);
    expect(r.code, r.stderr + r.stdout.slice(-2000)).toBe(0);
    expect(parseJob(r.stdout).read.io_bytes).toBe(8 * mib);
    // The two exports are two images: a write to one is not seen in the other.
    const theirs = await run("qemu-io", ["-f", "raw", "-c", "write -P 0x22 0 64k", "-c", "read -P 0x22 0 64k", slashUri]);
    expect(theirs.code, theirs.stderr).toBe(0);
    expect(theirs.stdout).not.toMatch(/Pattern verification failed/);
    const mine = await run("qemu-io", ["-f", "raw", "-c", "read -P 0x22 0 64k", uri]);
    expect(mine.stdout + mine.stderr).toMatch(/Pattern verification failed/);
  });

  it("refuses an unknown export name to qemu-img and fio", async () => {
    const bad = `nbd+unix:///nope?socket=${join(dir, "nbd.sock")}`;
    const info = await run("qemu-img", ["info", bad]);
    expect(info.code).not.toBe(0);
    expect(info.stderr).toMatch(/nope|export/i);
    const f = await run("fio", ["--name=bad", "--ioengine=nbd", `--uri=${bad}`, "--rw=read", "--bs=4k", "--size=1M"]);
    expect(f.code).not.toBe(0);
  });

  it("drops a client that sends garbage and keeps serving the others", async () => {
    const before = await run("qemu-io", ["-f", "raw", "-c", "write -P 0x11 0 64k", uri]);
    expect(before.code, before.stderr).toBe(0);
    const closed = await new Promise<boolean>((resolve) => {
      const s = connect(join(dir, "nbd.sock"), () => s.write(randomBytes(4096)));
      s.on("data", () => undefined); // keep reading, or the server's close is never seen
      s.on("error", () => undefined);
      s.on("close", () => resolve(true));
      setTimeout(() => resolve(false), disconnectTimeoutMs).unref();
    });
    expect(closed).toBe(true);
    const after = await run("qemu-io", ["-f", "raw", "-c", "read -P 0x11 0 64k", uri]);
    expect(after.code, after.stderr).toBe(0);
    expect(after.stdout).not.toMatch(/Pattern verification failed/);
  });
});
