// The fio JSON parser and argument builder of the storage benchmark, on output recorded from real
// fio 3.33 runs (testdata/): a psync 4 KiB random write (with the note fio prints before the
// JSON when iodepth > 1 meets a synchronous engine) and a libaio 4 KiB random read at QD32.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { FioError, fioArgs, parseFioJson, storageJobs } from "./fio.ts";

const here = fileURLToPath(new URL(".", import.meta.url));
const psyncWrite = readFileSync(join(here, "testdata/fio-psync-randwrite.json"), "utf8");
const libaioRead = readFileSync(join(here, "testdata/fio-libaio-randread.json"), "utf8");

function expectFioError(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FioError);
    expect((err as FioError).code).toBe(code);
    return;
  }
  throw new Error("expected a FioError");
}

describe("parseFioJson", () => {
  it("reads the write side of a job, skipping the note before the JSON", () => {
    expect(psyncWrite.startsWith("note:")).toBe(true);
    const f = parseFioJson(psyncWrite, "write");
    expect(f.iops).toBeCloseTo(19165.417291, 5);
    expect(f.mbPerS).toBeCloseTo(78.501549, 5);
    expect(f.latP50Us).toBeCloseTo(37.632, 6);
    expect(f.latP99Us).toBeCloseTo(84.48, 6);
    expect(f.latMeanUs).toBeCloseTo(51.795488735, 6);
  });

  it("reads the read side of a read job", () => {
    const f = parseFioJson(libaioRead, "read");
    expect(f.iops).toBeCloseTo(106510.244878, 5);
    expect(f.mbPerS).toBeCloseTo(436.329419, 5);
    expect(f.latP50Us).toBeCloseTo(191.488, 6);
    expect(f.latP99Us).toBeCloseTo(3227.648, 6);
  });

  it("refuses the side on which nothing was done", () => {
    expectFioError(() => parseFioJson(libaioRead, "write"), "fio_output");
    expectFioError(() => parseFioJson(psyncWrite, "read"), "fio_output");
  });

  it("reports a job that fio says failed", () => {
    const failed = libaioRead.replace(/"error" : 0/, '"error" : 5');
    expectFioError(() => parseFioJson(failed, "read"), "fio_job_error");
  });

  it("reports output without JSON, with truncated JSON, or without percentiles", () => {
    expectFioError(() => parseFioJson("fio: engine nbd not loadable\n", "read"), "fio_output");
    expectFioError(() => parseFioJson(libaioRead.slice(0, libaioRead.length / 2), "read"), "fio_output");
    const noPct = JSON.parse(libaioRead) as { jobs: { read: { clat_ns: { percentile?: unknown } } }[] };
    delete noPct.jobs[0]!.read.clat_ns.percentile;
    expectFioError(() => parseFioJson(JSON.stringify(noPct), "read"), "fio_output");
  });
});

describe("fioArgs", () => {
  const run = { runtimeS: 8, rampS: 1, sizeBytes: 1 << 30 };

  it("passes --direct=1 only to engines that honour it, and bounds the run", () => {
    const nbd = fioArgs({ name: "qsd", engineArgs: ["--ioengine=nbd", "--uri=nbd+unix:///d?socket=/s"], direct: false }, storageJobs[1], run);
    expect(nbd).not.toContain("--direct=1");
    expect(nbd).toEqual(expect.arrayContaining(["--ioengine=nbd", "--rw=randwrite", "--bs=4k", "--iodepth=32", "--time_based", "--runtime=8", "--ramp_time=1", "--output-format=json"]));
    const file = fioArgs({ name: "local", engineArgs: ["--ioengine=libaio", "--filename=/f"], direct: true }, storageJobs[0], run);
    expect(file).toEqual(expect.arrayContaining(["--direct=1", "--rw=write", "--bs=1M", "--iodepth=16", `--size=${1 << 30}`]));
  });
});
