// Sub-commands for images on replicated volumes: `trivet image create|list|show|resize|delete|
// verify` — thin wrappers over ImageService, printing tables or `--output json`. Sizes take
// binary suffixes (10G, 512M, 1T).
import { ImageService, type Image } from "../core/api/gen/trivet/v1/storage_pb.ts";
import { UsageError, type Command } from "./commands.ts";
import { apiCommand, printResult } from "./client-config.ts";
import { formatBytes, parseSize } from "./sizes.ts";

const volumeFlag = { volume: { type: "string", required: true } } as const;

function ref(positional: string[], f: Record<string, unknown>): { volume: string; name: string } {
  if (positional.length !== 1) throw new UsageError("give exactly one image name (and its volume with --volume)");
  return { volume: String(f.volume), name: positional[0]! };
}

function row(i: Image): Record<string, string | number> {
  return {
    volume: i.volume, name: i.name, kind: i.kind, format: i.format, size: formatBytes(i.sizeBytes), state: i.state,
    in_sync: `${i.replicas.filter((r) => r.inSync).length}/${i.replicas.length}`, writer: i.writerNodeName || "-",
  };
}

function replicaRows(i: Image): Array<Record<string, string | number | boolean>> {
  return i.replicas.map((r) => ({
    node: r.nodeName || String(r.nodeId), in_sync: r.inSync, full_heal: r.fullHeal,
    heal: r.healTotalBytes > 0n ? `${formatBytes(r.healDoneBytes)} / ${formatBytes(r.healTotalBytes)}` : "-",
  }));
}

export const imageCommands: Command[] = [
  apiCommand(["image", "create"], "create an image on a volume (a sparse file on each of its bricks)",
    "NAME --volume VOL --size SIZE [--format raw|qcow2] [--kind disk|iso|template]", {
      ...volumeFlag, size: { type: "string", required: true }, format: { type: "string", default: "" }, kind: { type: "string", default: "" },
    }, async (c, f, p, ctx, mode) => {
      const r = await c.call(ImageService, "createImage", { ...ref(p, f), sizeBytes: parseSize("size", String(f.size)), format: String(f.format), kind: String(f.kind) });
      if (mode === "json") printResult(ctx.stdout, "json", r, []);
      else ctx.stdout.write(`image ${r.image?.name} created on volume ${r.image?.volume} (${formatBytes(r.image?.sizeBytes ?? 0n)}, ${r.image?.format})\n`);
    }),
  apiCommand(["image", "list"], "list images, of every volume or of one", "[--volume VOL] [--output table|json]", { volume: { type: "string", default: "" } }, async (c, f, _p, ctx, mode) => {
    const r = await c.call(ImageService, "listImages", { volume: String(f.volume) });
    printResult(ctx.stdout, mode, r, r.images.map(row));
  }),
  apiCommand(["image", "show"], "show an image and its replicas", "NAME --volume VOL [--output table|json]", volumeFlag, async (c, f, p, ctx, mode) => {
    const r = await c.call(ImageService, "getImage", ref(p, f));
    const i = r.image!;
    if (mode === "json") return printResult(ctx.stdout, "json", r, []);
    printResult(ctx.stdout, mode, r, [{ ...row(i), id: i.id, generation: Number(i.generation), writer_epoch: Number(i.writerEpoch), writer_clean: i.writerClean }]);
    ctx.stdout.write("\n");
    printResult(ctx.stdout, mode, r, replicaRows(i));
  }),
  apiCommand(["image", "resize"], "grow an image (images never shrink)", "NAME --volume VOL --size SIZE", { ...volumeFlag, size: { type: "string", required: true } }, async (c, f, p, ctx, mode) => {
    const r = await c.call(ImageService, "resizeImage", { ...ref(p, f), sizeBytes: parseSize("size", String(f.size)) });
    if (mode === "json") printResult(ctx.stdout, "json", r, []);
    else ctx.stdout.write(`image ${p[0]} is now ${formatBytes(r.image?.sizeBytes ?? 0n)}\n`);
  }),
  apiCommand(["image", "delete"], "delete an image from every brick of its volume", "NAME --volume VOL", volumeFlag, async (c, f, p, ctx) => {
    await c.call(ImageService, "deleteImage", ref(p, f));
    ctx.stdout.write(`image ${p[0]} deleted\n`);
  }),
  apiCommand(["image", "verify"], "compare the checksums of an image's in-sync replicas, chunk by chunk", "NAME --volume VOL [--output table|json]", volumeFlag, async (c, f, p, ctx, mode) => {
    const r = await c.call(ImageService, "verifyImage", ref(p, f));
    if (mode === "json") printResult(ctx.stdout, "json", r, []);
    else {
      printResult(ctx.stdout, mode, r, r.replicas.map((x) => ({ node: x.nodeName || String(x.nodeId), ok: x.ok, error: x.error || "-" })));
      for (const m of r.mismatches) ctx.stdout.write(`chunk at offset ${m.offset} (${formatBytes(r.chunkBytes)}) differs on node(s) ${m.nodeIds.join(", ")}\n`);
    }
    if (!r.consistent) throw new Error(`image ${p[0]}: replicas are not consistent (${r.mismatches.length} chunk(s) differ, ${r.replicas.filter((x) => !x.ok).length} replica(s) unreadable)`);
    if (mode === "table") ctx.stdout.write(`image ${p[0]}: ${r.replicas.length} replica(s) consistent\n`);
  }),
];
