// Sub-commands for images on replicated volumes: `trivet image create|list|show|resize|delete|
// verify|upload` — thin wrappers over ImageService, printing tables or `--output json`. Sizes take
// binary suffixes (10G, 512M, 1T). The upload sequence itself is image-upload.ts.
import fs from "node:fs";
import type { ApiClient } from "../core/api/client.ts";
import { ImageService, type Image } from "../core/api/gen/trivet/v1/storage_pb.ts";
import { UsageError, type Command, type CommandContext } from "./commands.ts";
import { apiCommand, printResult } from "./client-config.ts";
import { planUpload, sendContent, UploadError } from "./image-upload.ts";
import { Progress } from "./progress.ts";
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

/** The file's size, or an UploadError that says why it cannot be uploaded (before anything is created). */
async function fileBytesOf(file: string): Promise<number> {
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(file);
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message;
    throw new UploadError("upload_input", `reading ${file}: ${why}`, { cause: err });
  }
  if (!st.isFile()) throw new UploadError("upload_input", `reading ${file}: not a regular file`);
  return st.size;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done);
  });
}

/** Deletes what a failed or interrupted upload left, and tells the user either way. */
async function discard(c: ApiClient, ref: { volume: string; name: string }, err: unknown): Promise<never> {
  const what = `${ref.volume}/${ref.name}`;
  const doing = err instanceof UploadError && err.code === "upload_interrupted" ? "upload interrupted" : "upload failed";
  let cleanup: string;
  try {
    await c.call(ImageService, "deleteImage", ref);
    cleanup = `deleted the partial image ${what}`;
  } catch (deleteErr) {
    cleanup = `could not delete the partial image ${what} (${(deleteErr as Error).message}); delete it with 'trivet image delete ${ref.name} --volume ${ref.volume}'`;
  }
  const code = err instanceof UploadError ? err.code : "upload_failed";
  throw new UploadError(code, `uploading image ${what}: ${doing}: ${(err as Error).message}; ${cleanup}`, { cause: err });
}

async function upload(c: ApiClient, f: Record<string, unknown>, p: string[], ctx: CommandContext, mode: "table" | "json"): Promise<void> {
  if (p.length !== 1) throw new UsageError("give exactly one file to upload (and the volume with --volume)");
  const file = p[0]!;
  const plan = planUpload(file, await fileBytesOf(file), { name: f.name as string | undefined, kind: f.kind as string | undefined });
  const ref = { volume: String(f.volume), name: plan.name };
  const handle = await fs.promises.open(file, "r");
  const ac = new AbortController();
  const onInterrupt = () => ac.abort();
  const progress = new Progress({ out: ctx.stderr, tty: (ctx.stderr as NodeJS.WriteStream).isTTY === true, label: `${ref.volume}/${ref.name}`, totalBytes: plan.fileBytes });
  // Ctrl-C stops the upload before its next chunk and the image is deleted; a second one kills.
  process.once("SIGINT", onInterrupt);
  try {
    await c.call(ImageService, "createImage", { ...ref, sizeBytes: BigInt(plan.sizeBytes), format: "raw", kind: plan.kind, upload: true });
    let done: Awaited<ReturnType<typeof finish>>;
    try {
      await sendContent({
        write: async (offset, data) => void (await c.call(ImageService, "writeImageContent", { ...ref, offset: BigInt(offset), data })),
        read: async (offset, length) => {
          const buf = Buffer.alloc(length);
          const { bytesRead } = await handle.read(buf, 0, length, offset);
          return buf.subarray(0, bytesRead);
        },
        sleep, onProgress: (n) => progress.update(n), signal: ac.signal,
      }, plan.fileBytes);
      done = await finish(c, ref);
      progress.end(true);
    } catch (err) {
      progress.end(false);
      return await discard(c, ref, err);
    }
    if (mode === "json") printResult(ctx.stdout, "json", done, []);
    else ctx.stdout.write(`image ${ref.name} uploaded to volume ${ref.volume} (${formatBytes(plan.fileBytes)}, ${plan.kind}, ${done.image?.state})\n`);
  } finally {
    process.off("SIGINT", onInterrupt);
    await handle.close();
  }
}

function finish(c: ApiClient, ref: { volume: string; name: string }) {
  return c.call(ImageService, "finishImageUpload", ref);
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
    else {
      ctx.stdout.write(`image ${p[0]} is now ${formatBytes(r.image?.sizeBytes ?? 0n)}\n`);
      // Running VMs not listed grow their disk online; these cannot (see `trivet vm show` for why).
      for (const vm of r.vmsPendingRestart) ctx.stdout.write(`VM ${vm} is running and cannot grow this disk online: it sees the new size after its next start\n`);
    }
  }),
  apiCommand(["image", "delete"], "delete an image from every brick of its volume", "NAME --volume VOL", volumeFlag, async (c, f, p, ctx) => {
    await c.call(ImageService, "deleteImage", ref(p, f));
    ctx.stdout.write(`image ${p[0]} deleted\n`);
  }),
  apiCommand(["image", "upload"], "upload a file (an ISO, a raw template) into the image library of a volume, with progress",
    "FILE --volume VOL [--name NAME] [--kind iso|template] [--output table|json]  (name: the file's, lower-cased; kind: iso for *.iso, else template)", {
      ...volumeFlag, name: { type: "string" }, kind: { type: "string" },
    }, (c, f, p, ctx, mode) => upload(c, f, p, ctx, mode)),
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
