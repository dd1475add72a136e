// What the proposer of a VM create needs beyond memory for placement: the volume images its
// disks name (a VM runs only on a node holding a copy of each, since QEMU reaches them through
// that node's NBD export), and a clear refusal when a node named in the request cannot take it.
import { ApiError } from "../api/server/errors.ts";
import type { HandlerContext } from "../api/server/service.ts";
import type { ImageRecord } from "../../storage/volume/model.ts";
import { getImageByName } from "../../storage/volume/storage-queries.ts";
import type { VmHostRecord } from "./vm-model.ts";

/** The images of the volume disks that exist (a missing one is refused, naming the field, by the apply). */
export function volumeImagesOf(ctx: HandlerContext, disks: ReadonlyArray<{ volume: string; image: string } | { sizeMiB: number }>): ImageRecord[] {
  return ctx.replica.stateMachine.read((db) => disks.flatMap((d) => {
    if (!("volume" in d)) return [];
    const image = getImageByName(db, d.volume, d.image);
    return image ? [image] : [];
  })).value;
}

interface Placing {
  hosts: readonly VmHostRecord[];
  assigned: ReadonlyMap<number, number>;
  nodeNames: ReadonlyMap<number, string>;
}

/** Why the node named in a create request cannot take the VM, as an API error naming the field "node". */
export function placementRefused(node: string, s: Placing, fits: (h: VmHostRecord) => boolean, holds: (h: VmHostRecord) => boolean, memoryMiB: number): ApiError {
  const host = s.hosts.find((h) => s.nodeNames.get(h.nodeId) === node);
  const why = !host
    ? "no such node has reported its host facts (see trivet node list)"
    : !holds(host)
      ? "it holds no copy of a volume disk of the VM (its volume has no brick there)"
      : !fits(host)
        ? "its QEMU, CPUs or bridges do not match the VM"
        : `it has ${host.memoryMiB - (s.assigned.get(host.nodeId) ?? 0)} MiB of memory left, less than the ${memoryMiB} MiB asked for`;
  return new ApiError("failed_precondition", `cannot place the VM on node ${node}: ${why}`, { field: "node" });
}
