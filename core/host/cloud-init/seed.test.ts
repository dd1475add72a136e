// The NoCloud seed: user-data and meta-data text for a user with keys, with a hashed or a plain
// password and without one, values that would break YAML kept as strings; and genisoimage
// really producing an ISO that `isoinfo -d` reports with the volume label cidata.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { metaData, seedHostname, SeedError, userData, writeSeedIso } from "./seed.ts";

const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBx4y alice@laptop";

describe("cloud-init seed text", () => {
  it("writes a sudo user with SSH keys and password login locked when no password is given", () => {
    expect(userData({ user: "alice", sshKeys: [key], hostname: "", password: null }, "web1")).toBe([
      "#cloud-config",
      'hostname: "web1"',
      "users:",
      '  - name: "alice"',
      '    shell: "/bin/bash"',
      '    sudo: "ALL=(ALL) NOPASSWD:ALL"',
      "    lock_passwd: true",
      "    ssh_authorized_keys:",
      `      - "${key}"`,
      "ssh_pwauth: false",
      "",
    ].join("\n"));
  });

  it("uses passwd for a crypt hash and plain_text_passwd otherwise, quoting what YAML would misread", () => {
    const hashed = userData({ user: "bob", sshKeys: [], hostname: "db", password: "$6$salt$abc/def" }, "db");
    expect(hashed).toContain('    passwd: "$6$salt$abc/def"\n');
    expect(hashed).toContain("    lock_passwd: false\n");
    expect(hashed).toContain("ssh_pwauth: true\n");
    expect(hashed).not.toContain("ssh_authorized_keys");
    const plain = userData({ user: "bob", sshKeys: [], hostname: "db", password: 'no: "yes" # x' }, "db");
    expect(plain).toContain('    plain_text_passwd: "no: \\"yes\\" # x"\n');
  });

  it("names the instance after the VM id and defaults the hostname to the VM name", () => {
    expect(metaData("5f0c7c2e-8d1a-4b7e-9c3f-2a6d8e4b1c90", "web1")).toBe('instance-id: "5f0c7c2e-8d1a-4b7e-9c3f-2a6d8e4b1c90"\nlocal-hostname: "web1"\n');
    expect(seedHostname({ user: "a", sshKeys: [], hostname: "", password: null }, "web1")).toBe("web1");
    expect(seedHostname({ user: "a", sshKeys: [], hostname: "db.example", password: null }, "web1")).toBe("db.example");
  });
});

const hasGenisoimage = (() => {
  try {
    execFileSync("genisoimage", ["-version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();
if (!hasGenisoimage) console.warn("seed.test.ts: skipping the ISO test: genisoimage is not installed (apt-get install genisoimage)");

describe.skipIf(!hasGenisoimage)("seed ISO", () => {
  const dir = mkdtempSync(join(tmpdir(), "trivet-seed-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("is an ISO 9660 image labelled cidata holding user-data and meta-data", async () => {
    const isoPath = join(dir, "cidata.iso");
    await writeSeedIso({ isoPath, workDir: join(dir, "work"), vmId: "5f0c7c2e-8d1a-4b7e-9c3f-2a6d8e4b1c90", vmName: "web1", cloudInit: { user: "alice", sshKeys: [key], hostname: "", password: null } });
    expect(execFileSync("isoinfo", ["-d", "-i", isoPath], { encoding: "utf8" })).toMatch(/^Volume id: cidata$/m);
    const listing = execFileSync("isoinfo", ["-R", "-f", "-i", isoPath], { encoding: "utf8" }).split("\n").filter((l) => l !== "").sort();
    expect(listing).toEqual(["/meta-data", "/user-data"]);
    expect(execFileSync("isoinfo", ["-R", "-x", "/user-data", "-i", isoPath], { encoding: "utf8" })).toContain(`- "${key}"`);
  });

  it("reports a genisoimage failure with its output", async () => {
    const isoPath = join(dir, "missing-dir", "cidata.iso");
    await expect(writeSeedIso({ isoPath, workDir: join(dir, "work2"), vmId: "x", vmName: "web1", cloudInit: { user: "alice", sshKeys: [], hostname: "", password: null } }))
      .rejects.toThrow(SeedError);
  });
});
