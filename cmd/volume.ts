// Sub-commands for replicated volumes: `trivet volume create|list|show|verify|delete` — thin
// wrappers over VolumeService, printing tables or `--output json`.
import { VolumeService, type VerifyVolumeResponse, type Volume } from "../core/api/gen/trivet/v1/storage_pb.ts";
import { UsageError, type Command, type CommandContext } from "./commands.ts";
import { apiCommand, clientFlags, connect, outputMode, printResult, type ClientFlagValues } from "./client-config.ts";
import { parseFlags } from "./flags.ts";
import { formatBytes } from "./sizes.ts";

/** Volume verify reads every replica of every image in full: far longer than an ordinary call may take. */
export const volumeVerifyTimeoutSecondsDefault = 3600;

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
    name: v.name, replicas: v.arbiter ? `${v.replicaCount}+arbiter` : v.replicaCount, images: v.imageCount, nodes: v.bricks.map((b) => b.nodeName || String(b.nodeId)).join(","),
    used: reported ? formatBytes(sum(v, (b) => b.usedBytes)) : "-", capacity: reported ? formatBytes(sum(v, (b) => b.capacityBytes)) : "-",
  };
}

function printVerify(ctx: CommandContext, r: VerifyVolumeResponse): void {
  printResult(ctx.stdout, "table", r, r.images.map((i) => ({
    image: i.name, result: i.result, compared: i.replicas.filter((x) => x.ok).map((x) => x.nodeName || String(x.nodeId)).join(",") || "-",
    chunks: Number(i.chunksCompared), differing: i.mismatches.length, reason: i.reason || "-",
  })));
  for (const i of r.images) {
    for (const m of i.mismatches) {
      const nodes = m.nodeNames.map((n, k) => n || String(m.nodeIds[k])).join(", ");
      ctx.stdout.write(`image ${i.name}: chunk at offset ${m.offset} (${formatBytes(r.chunkBytes)}) differs on node(s) ${nodes}${m.noMajority ? " (no majority: which copy is right is unknown)" : ""}\n`);
    }
  }
}

/** `volume verify`: its own client, for the long call deadline; exits 1 when an image differs or is unverified. */
function verifyCommand(): Command {
  const spec = { ...clientFlags, "timeout-seconds": { type: "string", default: String(volumeVerifyTimeoutSecondsDefault) } } as const;
  return {
    path: ["volume", "verify"], summary: "compare the checksums of every image of a volume across its in-sync replicas",
    usage: `NAME [--timeout-seconds N (default ${volumeVerifyTimeoutSecondsDefault})] [--output table|json]  (exit status 1 when an image differs or could not be verified)`,
    async run(ctx) {
      const { flags, positional } = parseFlags(ctx.argv, spec);
      const mode = outputMode(flags.output);
      const timeoutSeconds = Number(flags["timeout-seconds"]);
      if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) throw new UsageError(`--timeout-seconds must be a positive number (got ${JSON.stringify(flags["timeout-seconds"])})`);
      const name = one(positional);
      const client = connect(flags as unknown as ClientFlagValues, { callTimeoutMs: timeoutSeconds * 1000 });
      try {
        const r = await client.call(VolumeService, "verifyVolume", { name });
        if (mode === "json") printResult(ctx.stdout, "json", r, []);
        else printVerify(ctx, r);
        const count = (result: string) => r.images.filter((i) => i.result === result).length;
        if (!r.consistent) {
          ctx.stderr.write(`trivet volume verify: volume ${name}: ${count("differs")} image(s) differ, ${count("unverified")} could not be verified\n`);
          return 1;
        }
        if (mode === "table") ctx.stdout.write(`volume ${name}: ${count("consistent")} image(s) consistent, ${count("skipped")} skipped\n`);
        return 0;
      } finally {
        client.close();
      }
    },
  };
}

export const volumeCommands: Command[] = [
  apiCommand(["volume", "create"], "create a replicated volume (a brick on each of its nodes)",
    "NAME [--replicas N] [--arbiter] [--bricks NODE=PATH,...]  (--replicas 2 --arbiter: two data copies, Raft arbitrates; needs 3 voters)", {
      replicas: { type: "string", default: "0" }, arbiter: { type: "boolean" }, bricks: { type: "string" },
    }, async (c, f, p, ctx, mode) => {
      const replicaCount = Number(f.replicas);
      if (!Number.isInteger(replicaCount) || replicaCount < 0) throw new UsageError(`--replicas must be a whole number (got ${JSON.stringify(f.replicas)})`);
      const r = await c.call(VolumeService, "createVolume", { name: one(p), replicaCount, arbiter: f.arbiter === true, brickPaths: brickPaths(f.bricks) });
      if (mode === "json") printResult(ctx.stdout, "json", r, []);
      else ctx.stdout.write(`volume ${r.volume?.name} created: ${r.volume?.replicaCount} replicas${r.volume?.arbiter ? " + arbiter" : ""} on ${r.volume?.bricks.map((b) => b.nodeName).join(", ")}\n`);
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
  verifyCommand(),
  apiCommand(["volume", "delete"], "delete an empty volume (its images must be deleted first)", "NAME", {}, async (c, _f, p, ctx) => {
    await c.call(VolumeService, "deleteVolume", { name: one(p) });
    ctx.stdout.write(`volume ${p[0]} deleted\n`);
  }),
];
