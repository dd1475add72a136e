// Tests of the /proc parsers the runtime uses for identity, liveness and usage.
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cmdlineIsQemuFor, parseProcStat, parseProcUptimeMs, processAlive } from "./proc.ts";

// A real line from a QEMU under TCG; the comm field holds a space and a parenthesis on purpose.
const stat = "4242 (qemu-system-x86) ) S 1 4242 4242 0 -1 4194624 28000 0 12 0 1234 566 0 0 20 0 5 0 98765 1500000000 70000 18446744073709551615 1 1 0 0 0 0 0 4096 17102 0 0 0 17 1 0 0 0 0 0";

describe("proc parsers", () => {
  it("parses state, group, CPU time, start time and RSS from /proc/<pid>/stat", () => {
    expect(parseProcStat(stat)).toEqual({ state: "S", processGroup: 4242, cpuTimeMs: 18000, startTimeMs: 987650, rssBytes: 70000 * 4096 });
  });

  it("refuses a truncated stat line", () => {
    expect(() => parseProcStat("4242 (qemu) S 1 4242")).toThrow(/field 14 missing/);
  });

  it("parses /proc/uptime", () => {
    expect(parseProcUptimeMs("12345.67 2345.00\n")).toBe(12345670);
  });

  it("recognises the QEMU of a VM by its -uuid argument", () => {
    const uuid = "5f0c7c2e-8d1a-4b7e-9c3f-2a6d8e4b1c90";
    expect(cmdlineIsQemuFor(`/usr/bin/qemu-system-x86_64\0-name\0guest=web1\0-uuid\0${uuid}\0`, uuid)).toBe(true);
    expect(cmdlineIsQemuFor(`/usr/bin/qemu-system-x86_64\0-uuid\0${uuid.replace("5f", "6f")}\0`, uuid)).toBe(false);
    expect(cmdlineIsQemuFor(`/usr/bin/sleep\0-uuid\0${uuid}\0`, uuid)).toBe(false);
    expect(cmdlineIsQemuFor(`/usr/bin/qemu-system-x86_64\0-name\0${uuid}\0`, uuid)).toBe(false);
  });

  it("counts a zombie as not alive", async () => {
    const root = await mkdtemp(join(tmpdir(), "trivet-proc-"));
    try {
      await mkdir(join(root, "10"));
      await writeFile(join(root, "10", "stat"), stat.replace(") S ", ") Z "));
      await mkdir(join(root, "11"));
      await writeFile(join(root, "11", "stat"), stat);
      expect(await processAlive(10, root)).toBe(false);
      expect(await processAlive(11, root)).toBe(true);
      expect(await processAlive(12, root)).toBe(false);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
