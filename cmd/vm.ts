// Sub-commands for virtual machines: `trivet vm create|list|show|update|start|stop|shutdown|
// pause|resume|reboot|reset|delete` — thin wrappers over VmService, printing tables or `--output json`.
import { VmDesiredState, VmService, type Vm, type VmDiskInfo } from "../core/api/gen/trivet/v1/vm_pb.ts";
import type { ApiClient } from "../core/api/client.ts";
import { ImageService } from "../core/api/gen/trivet/v1/storage_pb.ts";
import { UsageError, type Command } from "./commands.ts";
import { parseSize } from "./sizes.ts";
import { apiCommand, printResult } from "./client-config.ts";
import { anyDeviceFlag, createDeviceConfig, deviceFlags, deviceUsage, updateDeviceFields, vlanOf } from "./vm-devices.ts";
import { formatCpu, formatMemory, formatUptime } from "./vm-format.ts";

const desiredNames: Record<number, string> = { [VmDesiredState.RUNNING]: "running", [VmDesiredState.STOPPED]: "stopped", [VmDesiredState.PAUSED]: "paused" };

function one(positional: string[]): string {
  if (positional.length !== 1) throw new UsageError("give exactly one VM name");
  return positional[0]!;
}

function posInt(flag: string, v: unknown): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${flag} must be a positive whole number (got ${JSON.stringify(v)})`);
  return n;
}

/** `--disk 8` (a new node-local disk of 8 MiB), `--disk vol/web1` (an existing volume image), or several joined by commas. */
export function disksOf(flag: string): Array<{ sizeMib: bigint; format: string } | { volume: string; image: string }> {
  return flag.split(",").map((item) => {
    const slash = item.indexOf("/");
    if (slash < 0) return { sizeMib: BigInt(posInt("disk", item)), format: "raw" };
    const volume = item.slice(0, slash);
    const image = item.slice(slash + 1);
    if (volume === "" || image === "" || image.includes("/")) throw new UsageError(`--disk takes a size in MiB or VOLUME/IMAGE (got ${JSON.stringify(item)})`);
    return { volume, image };
  });
}

/** `--disk-size 10G --volume vol`: a new raw disk image "<vm name>-disk0" on the volume, for the VM's only disk. */
async function createVolumeDisk(c: ApiClient, vmName: string, size: string | undefined, volume: string | undefined, disk: string | undefined): Promise<{ volume: string; image: string } | null> {
  if (size === undefined && volume === undefined) return null;
  if (size === undefined || volume === undefined) throw new UsageError("--disk-size and --volume go together (a new disk image on that volume)");
  if (disk !== undefined) throw new UsageError("give either --disk or --disk-size with --volume, not both");
  const image = `${vmName}-disk0`;
  await c.call(ImageService, "createImage", { volume, name: image, sizeBytes: parseSize("disk-size", size), format: "raw", kind: "disk" });
  return { volume, image };
}

/** "disk0=8M:raw" or "disk1=vol/web1". */
function diskText(d: VmDiskInfo): string {
  return d.volume !== "" ? `${d.id}=${d.volume}/${d.image}` : `${d.id}=${d.sizeMib}M:${d.format}`;
}

function row(v: Vm): Record<string, string | number> {
  return {
    name: v.name, node: v.nodeName, desired: desiredNames[v.desiredState] ?? "?", state: v.status?.state || "-",
    pid: Number(v.status?.pid ?? 0n) || "-", vcpus: v.vcpus, memory_mib: Number(v.memoryMib), "cpu%": formatCpu(v.status), mem: formatMemory(v.status),
  };
}

function actionCommand(verb: "start" | "stop" | "shutdown" | "pause" | "resume" | "reboot" | "reset", summary: string): Command {
  const method = `${verb}Vm` as const;
  return apiCommand(["vm", verb], summary, "NAME", {}, async (c, _f, p, ctx) => {
    const r = await c.call(VmService, method, { name: one(p) });
    ctx.stdout.write(`vm ${p[0]}: desired ${desiredNames[r.vm?.desiredState ?? 0] ?? "?"} (the host agent of ${r.vm?.nodeName} acts on it)\n`);
  });
}

export const vmCommands: Command[] = [
  apiCommand(["vm", "create"], "create a VM (placed on the least-loaded node that fits)",
    `NAME --vcpus N --memory MiB [--kernel PATH --initrd PATH --append STR] [--disk SIZE_MiB|VOLUME/IMAGE[,…] | --disk-size SIZE --volume VOL] [--node NAME] [--mac MAC] [--machine TYPE] ${deviceUsage} [--start]`, {
      vcpus: { type: "string", required: true }, memory: { type: "string", required: true }, kernel: { type: "string" }, initrd: { type: "string" },
      append: { type: "string" }, disk: { type: "string" }, "disk-size": { type: "string" }, volume: { type: "string" }, node: { type: "string" }, mac: { type: "string" }, machine: { type: "string" }, start: { type: "boolean" }, ...deviceFlags,
    }, async (c, f, p, ctx, mode) => {
      if ((f.initrd !== undefined || f.append !== undefined) && f.kernel === undefined) throw new UsageError("--initrd and --append need --kernel");
      const config = {
        vcpus: posInt("vcpus", f.vcpus), memoryMib: BigInt(posInt("memory", f.memory)), machineType: String(f.machine ?? ""),
        disks: f.disk === undefined ? [] : disksOf(String(f.disk)),
        nics: [{ mac: String(f.mac ?? ""), bridge: String(f.bridge ?? ""), vlan: vlanOf(f, String(f.bridge ?? "")) }],
        kernelBoot: f.kernel === undefined ? undefined : { kernelPath: String(f.kernel), initrdPath: String(f.initrd ?? ""), append: String(f.append ?? "") },
        ...(await createDeviceConfig(f)),
      };
      const made = await createVolumeDisk(c, one(p), f["disk-size"] as string | undefined, f.volume as string | undefined, f.disk as string | undefined);
      if (made) config.disks = [made];
      const r = await c.call(VmService, "createVm", { name: one(p), config, start: f.start === true, node: String(f.node ?? "") }).catch(async (err: unknown) => {
        // The image was made for this VM only: take it back (best effort) so a retry can make it again.
        if (made) await c.call(ImageService, "deleteImage", { volume: made.volume, name: made.image }).catch(() => undefined);
        throw err;
      });
      if (made && mode !== "json") ctx.stdout.write(`image ${made.image} created on volume ${made.volume}\n`);
      if (mode === "json") printResult(ctx.stdout, "json", r, []);
      else ctx.stdout.write(`vm ${r.vm?.name} created on ${r.vm?.nodeName} (${r.vm?.machineType}, MAC ${r.vm?.nics.map((n) => n.mac).join(", ") || "none"})\n`);
    }),
  apiCommand(["vm", "list"], "list VMs with their reported status", "[--output table|json]", {}, async (c, _f, _p, ctx, mode) => {
    const r = await c.call(VmService, "listVms", {});
    printResult(ctx.stdout, mode, r, r.vms.map(row));
  }),
  apiCommand(["vm", "show"], "show one VM", "NAME [--output table|json]", {}, async (c, _f, p, ctx, mode) => {
    const r = await c.call(VmService, "getVm", { name: one(p) });
    const v = r.vm!;
    printResult(ctx.stdout, mode, r, [{
      ...row(v), uptime: formatUptime(v.status), id: v.id, machine: v.machineType, macs: v.nics.map((n) => n.mac).join(" "), error: v.status?.error || "-",
      description: v.description || "-", pending_restart: v.pendingFields.join(",") || "-", last_action: v.status?.lastAction || "-",
      nics: v.nics.map((n) => `${n.bridge || "user"}${n.vlan ? `.${n.vlan}` : ""}`).join(" ") || "-", firmware: v.firmware || "seabios",
      display: v.display || "none", cdrom: v.cdromPath || "-", disks: v.disks.map(diskText).join(" ") || "-", boot: v.bootOrder.join(",") || "-", cloud_init: v.cloudInitUser || "-",
    }]);
  }),
  apiCommand(["vm", "update"], "change a VM's vCPUs, memory, devices or description (all but the description apply at its next start)",
    `NAME [--vcpus N] [--memory MiB] [--description TEXT] ${deviceUsage.replace(" [--firmware seabios|ovmf]", "")}`,
    { vcpus: { type: "string" }, memory: { type: "string" }, description: { type: "string" }, ...deviceFlags },
    async (c, f, p, ctx, mode) => {
      if (f.vcpus === undefined && f.memory === undefined && f.description === undefined && !anyDeviceFlag(f)) throw new UsageError("give at least one of --vcpus, --memory, --description or a device flag");
      const current = anyDeviceFlag(f) ? (await c.call(VmService, "getVm", { name: one(p) })).vm?.nics ?? [] : [];
      const r = await c.call(VmService, "updateVm", {
        ...(await updateDeviceFields(f, current)),
        name: one(p), vcpus: f.vcpus === undefined ? undefined : posInt("vcpus", f.vcpus), memoryMib: f.memory === undefined ? undefined : BigInt(posInt("memory", f.memory)),
        description: f.description === undefined ? undefined : String(f.description),
      });
      if (mode === "json") printResult(ctx.stdout, "json", r, []);
      else ctx.stdout.write(`vm ${p[0]} updated${r.vm?.pendingRestart ? `; pending until its next start: ${r.vm.pendingFields.join(", ")}` : ""}\n`);
    }),
  actionCommand("start", "start a VM"),
  actionCommand("stop", "stop a VM at once (forced)"),
  actionCommand("shutdown", "shut a VM down through ACPI (forced after a timeout)"),
  actionCommand("pause", "pause a running VM"),
  actionCommand("resume", "resume a paused VM"),
  actionCommand("reboot", "reboot a running VM (a reset until guests can be asked to reboot)"),
  actionCommand("reset", "reset a running VM at once (the reset button)"),
  apiCommand(["vm", "delete"], "delete a VM with its node-local disks, or keeping them (its node stops it first); volume images always stay", "NAME [--keep-disks]", { "keep-disks": { type: "boolean" } }, async (c, f, p, ctx) => {
    const r = await c.call(VmService, "deleteVm", { name: one(p), keepDisks: f["keep-disks"] === true });
    ctx.stdout.write(`vm ${p[0]} deleted\n`);
    for (const d of r.keptDisks) ctx.stdout.write(`kept disk ${d.path} on ${d.nodeName}\n`);
    for (const image of r.volumeImages) ctx.stdout.write(`kept volume image ${image} (volume images belong to their volume; delete it with trivet image delete)\n`);
  }),
];
