// Sub-commands for replicated volumes: `trivet volume create|list|show|delete` — thin wrappers
// over VolumeService, printing tables or `--output json`.
import { VolumeService, type Volume } from "../core/api/gen/trivet/v1/storage_pb.ts";
import { UsageError, type Command } from "./commands.ts";
import { apiCommand, printResult } from "./client-config.ts";
import { formatBytes } from "./sizes.ts";

function one(positional: string[]): string {
  if (positional.length !== 1) throw new UsageError("give exactly one volume name");
  return positional[0]!;
}

/** "n1=/srv/b1,n2=/srv/b2" → brick paths by node name. */
function brickPaths(v: unknown): Array<{ nodeName: string; path: string }> {
  if (v === undefined) return [];
  return String(v).split(",").map((entry) => {
    const eq = entry.indexOf("=");
    if (eq < 1) throw new UsageError(`--bricks takes NODE=PATH pairs separated by commas (got ${JSON.stringify(entry)})`);
    return { nodeName: entry.slice(0, eq), path: entry.slice(eq + 1) };
  });
}

function sum(v: Volume, f: (b: Volume["bricks"][number]) => bigint): bigint {
  return v.bricks.reduce((a, b) => a + f(b), 0n);
}

function row(v: Volume): Record<string, string | number> {
  const reported = v.bricks.every((b) => b.reportedAtMs > 0n);
  return {
    name: v.name, replicas: v.replicaCount, images: v.imageCount, nodes: v.bricks.map((b) => b.nodeName || String(b.nodeId)).join(","),
    used: reported ? formatBytes(sum(v, (b) => b.usedBytes)) : "-", capacity: reported ? formatBytes(sum(v, (b) => b.capacityBytes)) : "-",
  };
}

export const volumeCommands: Command[] = [
  apiCommand(["volume", "create"], "create a replicated volume (a brick on each of its nodes)", "NAME [--replicas N] [--bricks NODE=PATH,...]", {
    replicas: { type: "string", default: "0" }, bricks: { type: "string" },
  }, async (c, f, p, ctx, mode) => {
    const replicaCount = Number(f.replicas);
    if (!Number.isInteger(replicaCount) || replicaCount < 0) throw new UsageError(`--replicas must be a whole number (got ${JSON.stringify(f.replicas)})`);
    const r = await c.call(VolumeService, "createVolume", { name: one(p), replicaCount, brickPaths: brickPaths(f.bricks) });
    if (mode === "json") printResult(ctx.stdout, "json", r, []);
    else ctx.stdout.write(`volume ${r.volume?.name} created: ${r.volume?.replicaCount} replicas on ${r.volume?.bricks.map((b) => b.nodeName).join(", ")}\n`);
  }),
  apiCommand(["volume", "list"], "list volumes", "[--output table|json]", {}, async (c, _f, _p, ctx, mode) => {
    const r = await c.call(VolumeService, "listVolumes", {});
    printResult(ctx.stdout, mode, r, r.volumes.map(row));
  }),
  apiCommand(["volume", "show"], "show a volume and its bricks", "NAME [--output table|json]", {}, async (c, _f, p, ctx, mode) => {
    const r = await c.call(VolumeService, "getVolume", { name: one(p) });
    const v = r.volume!;
    if (mode === "table") {
      printResult(ctx.stdout, mode, r, [{ ...row(v), id: v.id }]);
      ctx.stdout.write("\n");
    }
    printResult(ctx.stdout, mode, r, v.bricks.map((b) => ({
      node: b.nodeName || String(b.nodeId), path: b.path || "(default: <data dir>/bricks/<volume>)",
      used: b.reportedAtMs > 0n ? formatBytes(b.usedBytes) : "-", capacity: b.reportedAtMs > 0n ? formatBytes(b.capacityBytes) : "-",
    })));
  }),
  apiCommand(["volume", "delete"], "delete an empty volume (its images must be deleted first)", "NAME", {}, async (c, _f, p, ctx) => {
    await c.call(VolumeService, "deleteVolume", { name: one(p) });
    ctx.stdout.write(`volume ${p[0]} deleted\n`);
  }),
];
