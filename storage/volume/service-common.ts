// What the volume and image services share: their permissions, the volume name rule, and one
// read of the storage records (with node names) from the local replica per request.
import { ApiError } from "../../core/api/server/errors.ts";
import type { HandlerContext } from "../../core/api/server/service.ts";
import { matches } from "../../core/api/server/validation.ts";
import { listNodeEndpoints } from "../../core/cluster/node-module.ts";
import { volumeNamePattern, type VolumeRecord } from "./model.ts";
import { listImages, listVolumes } from "./storage-queries.ts";

/** Reads for everyone; creating and deleting volumes and images is for Administrators (rbac.ts). */
export const storagePermissions = { read: "storage.read", operate: "storage.operate", manage: "storage.manage" } as const;

export const volumeNameRule = matches(volumeNamePattern, "must be a lower-case DNS label of 1 to 63 characters");

/** What the handlers read from the local replica, in one read. */
export function storageSnapshot(ctx: HandlerContext) {
  return ctx.replica.stateMachine.read((db) => ({
    volumes: listVolumes(db), images: listImages(db),
    nodes: listNodeEndpoints(db).map((n) => ({ nodeId: n.nodeId, name: n.name })),
  })).value;
}
export type StorageSnapshot = ReturnType<typeof storageSnapshot>;

export function nodeNamesOf(s: StorageSnapshot): Map<number, string> {
  return new Map(s.nodes.map((n) => [n.nodeId, n.name]));
}

export function findVolume(s: StorageSnapshot, name: string, field = "name"): VolumeRecord {
  const v = s.volumes.find((x) => x.name === name);
  if (!v) throw new ApiError("not_found", `volume "${name}" does not exist`, { field });
  return v;
}
