// The NBD server with a file brick against real clients over nbd+unix://: qemu-img, qemu-io and
// fio's nbd engine with crc32c verification. The server runs in this process, so every client
// is spawned asynchronously (a synchronous spawn would starve the server).
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

let dir = "";
let server: NbdServer;
let backend: FileBackend;
let uri = "";

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "trivet-nbd-it-"));
  backend = await FileBackend.open({ path: join(dir, "image.raw"), sizeBytes: imageBytes });
  server = new NbdServer({ socketPath: join(dir, "nbd.sock") });
  server.addExport("disk", backend);
  await server.listen();
  uri = `nbd+unix:///disk?socket=${join(dir, "nbd.sock")}`;
});

afterAll(async () => {
  await server.close();
  await backend.close();
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
      const job = (JSON.parse(r.stdout.slice(r.stdout.indexOf("{"))) as { jobs: { error: number; write: { io_bytes: number }; read: { io_bytes: number } }[] }).jobs[0];
      expect(job?.error).toBe(0);
      expect(job?.write.io_bytes).toBe(32 * mib);
      expect(job?.read.io_bytes).toBe(32 * mib); // every block was read back and verified
    });
  }

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
