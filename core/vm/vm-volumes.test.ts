// VM disks on replicated volume images and CD-ROMs from the ISO library, through the state
// modules' own validate and apply: names checked before proposal, and at apply the image must
// exist, be of the right kind and ready, and a disk image belongs to one VM at a time — each
// refusal names the field and writes nothing. Deleting the VM frees its image for another VM.
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { storageModule } from "../../storage/volume/storage-module.ts";
import type { CommandResult } from "../state/apply.ts";
import { migrate } from "../state/migrations.ts";
import type { ApplyContext } from "../state/modules.ts";
import { listVms, vmModule } from "./vm-module.ts";

const uuid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;
const volumeId = uuid(100);

function open() {
  const db = new Database(":memory:");
  migrate(db);
  for (const id of [1, 2, 3]) db.prepare("INSERT INTO nodes (id, name, address, role, added_index) VALUES (?, ?, ?, 'voter', 0)").run(id, `n${id}`, `127.0.0.1:${7000 + id}`);
  let index = 0;
  const run = (name: string, payload: unknown): CommandResult => {
    const spec = vmModule.commands[name] ?? storageModule.commands[name]!;
    const ctx: ApplyContext = { db, index: ++index, atMs: 1000 + index, clientId: "c", prepare: (sql) => db.prepare(sql) };
    return db.transaction(() => spec.apply(ctx, spec.validate(payload)))();
  };
  run("vm.report_host", { nodeId: 1, memoryMiB: 4096, cpus: 4, machineTypes: ["pc-i440fx-7.2"], accelerators: ["tcg"], bridges: [] });
  run("storage.volume.create", { id: volumeId, name: "vol", replicaCount: 3, bricks: [1, 2, 3].map((nodeId) => ({ nodeId, path: "" })) });
  const image = (n: number, name: string, kind: string, state = "ready") => run("storage.image.create", { id: uuid(200 + n), volumeId, name, kind, format: "raw", sizeBytes: 1 << 20, state });
  image(1, "root", "disk");
  image(2, "data", "disk");
  image(3, "d.iso", "iso");
  image(4, "up.iso", "iso", "uploading");
  return { db, run };
}

const spec = (disks: unknown[], cdrom?: string) => ({ vcpus: 1, memoryMiB: 256, machineType: "pc-i440fx-7.2", disks, ...(cdrom ? { cdrom: { path: cdrom } } : {}) });
const create = (n: number, name: string, disks: unknown[], cdrom?: string) => ({ id: uuid(n), name, nodeId: 1, spec: spec(disks, cdrom) });

describe("VM disks on volume images", () => {
  it("checks the names before proposal, naming the field", () => {
    const v = vmModule.commands["vm.create"]!.validate;
    expect(v(create(1, "web1", [{ volume: "vol", image: "root" }, { sizeMiB: 8 }]))).toMatchObject({ spec: { disks: [{ id: "disk0", volume: "vol", image: "root" }, { id: "disk1", sizeMiB: 8, format: "raw" }] } });
    expect(() => v(create(1, "web1", [{ volume: "Vol", image: "root" }]))).toThrow(/field "disks\[0\]\.volume"/);
    expect(() => v(create(1, "web1", [{ sizeMiB: 8 }, { volume: "vol", image: "-root" }]))).toThrow(/field "disks\[1\]\.image"/);
    expect(() => v(create(1, "web1", [{ volume: "vol" }]))).toThrow(/field "disks\[0\]\.image" a volume disk needs both/);
    expect(() => v(create(1, "web1", [{ volume: "vol", image: "root", sizeMiB: 8 }]))).toThrow(/not both/);
    expect(v(create(1, "web1", [], "isos/d.iso"))).toMatchObject({ spec: { cdrom: { path: "isos/d.iso" } } });
    expect(() => v(create(1, "web1", [], "d.iso"))).toThrow(/field "cdrom.path"/);
    expect(() => v(create(1, "web1", [], "vol/a/b"))).toThrow(/field "cdrom.path"/);
  });

  it("refuses at apply a missing volume or image, a wrong kind, an unfinished ISO, and a disk image another VM uses", () => {
    const { db, run } = open();
    expect(run("vm.create", create(1, "web1", [{ volume: "vol", image: "root" }], "vol/d.iso"))).toMatchObject({ ok: true });
    expect(run("vm.create", create(2, "web2", [{ volume: "nope", image: "root" }]))).toMatchObject({ ok: false, code: "not_found", field: "disks[0].volume" });
    expect(run("vm.create", create(2, "web2", [{ volume: "vol", image: "nope" }]))).toMatchObject({ ok: false, code: "not_found", field: "disks[0].image" });
    expect(run("vm.create", create(2, "web2", [{ volume: "vol", image: "d.iso" }]))).toMatchObject({ ok: false, code: "invalid_argument", field: "disks[0].image", message: expect.stringMatching(/kind iso; a VM disk needs an image of kind disk/) });
    expect(run("vm.create", create(2, "web2", [{ volume: "vol", image: "data" }, { volume: "vol", image: "data" }]))).toMatchObject({ ok: false, field: "disks[1].image", message: expect.stringMatching(/given twice/) });
    expect(run("vm.create", create(2, "web2", [{ volume: "vol", image: "root" }]))).toMatchObject({ ok: false, code: "failed_precondition", field: "disks[0].image", message: expect.stringMatching(/already the disk of VM "web1"/) });
    expect(run("vm.create", create(2, "web2", [], "vol/up.iso"))).toMatchObject({ ok: false, field: "cdrom.path", message: expect.stringMatching(/still uploading/) });
    expect(run("vm.create", create(2, "web2", [], "vol/root"))).toMatchObject({ ok: false, field: "cdrom.path", message: expect.stringMatching(/kind disk; a CD-ROM needs an image of kind iso/) });
    expect(run("vm.create", create(2, "web2", [], "vol/gone.iso"))).toMatchObject({ ok: false, code: "not_found", field: "cdrom.path" });
    // An ISO is read-only: any number of VMs may have it in their CD-ROM.
    expect(run("vm.create", create(3, "web3", [{ volume: "vol", image: "data" }], "vol/d.iso"))).toMatchObject({ ok: true });
    expect(listVms(db).map((v) => v.name)).toEqual(["web1", "web3"]);
  });

  it("refuses a volume disk on a node without a copy of it", () => {
    const { db, run } = open();
    run("storage.volume.create", { id: uuid(101), name: "solo", replicaCount: 1, bricks: [{ nodeId: 3, path: "" }] });
    run("storage.image.create", { id: uuid(300), volumeId: uuid(101), name: "d", kind: "disk", format: "raw", sizeBytes: 1 << 20, state: "ready" });
    expect(run("vm.create", create(1, "web1", [{ volume: "solo", image: "d" }]))).toMatchObject({ ok: false, field: "disks[0].image", message: expect.stringMatching(/image solo\/d has no copy on node 1 \(its volume's bricks are on nodes 3\)/) });
    expect(listVms(db)).toEqual([]);
  });

  it("checks a CD-ROM changed by an update, and frees a VM's disk image when the VM is deleted", () => {
    const { run } = open();
    run("vm.create", create(1, "web1", [{ volume: "vol", image: "root" }]));
    expect(run("vm.update", { id: uuid(1), cdrom: { path: "vol/data" } })).toMatchObject({ ok: false, field: "cdrom.path" });
    expect(run("vm.update", { id: uuid(1), cdrom: { path: "vol/d.iso" } })).toMatchObject({ ok: true, changed: ["cdrom"] });
    expect(run("vm.delete", { id: uuid(1) })).toMatchObject({ ok: true, deleted: true });
    expect(run("vm.create", create(2, "web2", [{ volume: "vol", image: "root" }]))).toMatchObject({ ok: true });
  });
});
