// Tests of the systemd unit of `trivet host install-service`: what keeps guests alive across a
// daemon restart (KillMode=process), restart on failure, the data dir, quoting, and the command.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { hostInstallServiceCommand, systemdUnit, systemdWord } from "./host-service.ts";

/** The unit's directives as [section, key, value] in order. */
function directives(unit: string): string[][] {
  let section = "";
  const out: string[][] = [];
  for (const line of unit.split("\n")) {
    if (line.startsWith("#") || line.trim() === "") continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s) section = s[1]!;
    else out.push([section, line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]);
  }
  return out;
}

const value = (unit: string, section: string, key: string) => directives(unit).filter(([s, k]) => s === section && k === key).map((d) => d[2]);

describe("systemd unit", () => {
  const unit = systemdUnit({ command: ["/usr/local/bin/trivet"], dataDir: "/srv/trivet data" });

  it("never kills guests on stop or restart, and restarts the daemon when it fails", () => {
    expect(value(unit, "Service", "KillMode")).toEqual(["process"]);
    expect(value(unit, "Service", "Restart")).toEqual(["on-failure"]);
    expect(value(unit, "Install", "WantedBy")).toEqual(["multi-user.target"]);
  });

  it("runs `serve` on the data dir, quoted for systemd", () => {
    expect(value(unit, "Service", "ExecStart")).toEqual(['/usr/local/bin/trivet serve --data-dir "/srv/trivet data"']);
    expect(systemdWord("/var/lib/trivet")).toBe("/var/lib/trivet");
    expect(systemdWord("/a/100%")).toBe("/a/100%%");
    expect(systemdWord("/a/$HOME")).toBe("/a/$$HOME");
    expect(systemdWord('a "b"\\')).toBe('"a \\"b\\"\\\\"');
    expect(() => systemdWord("a\nExecStartPre=/bin/evil")).toThrow(/control characters/);
    expect(() => systemdUnit({ command: ["/t"], dataDir: "relative" })).toThrow(/absolute/);
  });

  it("prints with --print and writes the file otherwise", async () => {
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on("data", (d: Buffer) => chunks.push(d));
    const ctx = (argv: string[]) => ({ argv, stdout: out, stderr: new PassThrough() });
    expect(await hostInstallServiceCommand.run(ctx(["--print", "--binary", "/opt/trivet/trivet", "--data-dir", "/var/lib/t"]))).toBe(0);
    expect(value(Buffer.concat(chunks).toString(), "Service", "ExecStart")).toEqual(["/opt/trivet/trivet serve --data-dir /var/lib/t"]);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "trivet-unit-"));
    try {
      const file = path.join(dir, "trivet.service");
      expect(await hostInstallServiceCommand.run(ctx(["--binary", "/opt/trivet/trivet", "--unit-file", file]))).toBe(0);
      const written = fs.readFileSync(file, "utf8");
      expect(value(written, "Service", "ExecStart")).toEqual(["/opt/trivet/trivet serve --data-dir /var/lib/trivet"]);
      expect(value(written, "Service", "KillMode")).toEqual(["process"]);
      expect(fs.statSync(file).mode & 0o777).toBe(0o644);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
