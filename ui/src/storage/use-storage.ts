// Loading the storage pages' volumes and images, live: reloaded on the event stream's storage
// events (kinds "storage.*", should the API publish them) and on the audit entries of volume and
// image changes made anywhere (CLI, another browser); polled every 5 s while a replica heals,
// for at most healPollMaxMs in a row, else on the slow fallback poll.
import { useEffect, useRef, useState } from "react";
import type { ApiEvent } from "../api/events.ts";
import type { Image } from "../api/types.ts";
import { fallbackRefreshMs, usePolled, type EventFilter, type Polled } from "../app/poll.ts";
import { useSession } from "../app/session.ts";
import { isHealing } from "./storage-model.ts";

/** Reload while a heal runs: its progress bar moves with the storage agents' reports. */
export const healPollMs = 5_000;
/** A heal followed this long without end goes back to the fallback poll (a stuck heal must not poll forever). */
export const healPollMaxMs = 10 * 60_000;

const storageAction = /^(trivet\.v1\.)?(VolumeService|ImageService)\./;

export const isStorageEvent: EventFilter = (e: ApiEvent) =>
  e.kind.startsWith("storage.") || (e.kind === "audit" && storageAction.test(e.fields.action ?? ""));

/** The poll period: fast while healing, until the heal has been followed for `healPollMaxMs`. */
export function pollEveryMs(healingSinceMs: number | undefined, nowMs: number): number {
  return healingSinceMs !== undefined && nowMs - healingSinceMs < healPollMaxMs ? healPollMs : fallbackRefreshMs;
}

/** When the current run of heals was first seen (undefined while nothing heals). */
function useHealingSince(images: readonly Image[] | undefined): number | undefined {
  const since = useRef<number | undefined>(undefined);
  if (!images || !isHealing(images)) since.current = undefined;
  else since.current ??= Date.now();
  return since.current;
}

export function useVolumes() {
  const { client } = useSession();
  return usePolled(() => client.call("VolumeService/ListVolumes", {}), fallbackRefreshMs, "", isStorageEvent);
}

/** `load` (images, or one image), polled faster while any of its images heals. */
function useHealPolled<T>(load: () => Promise<T>, key: string, imagesOf: (d: T) => readonly Image[]): Polled<T> {
  const [everyMs, setEveryMs] = useState(fallbackRefreshMs);
  const got = usePolled(load, everyMs, key, isStorageEvent);
  const since = useHealingSince(got.data === undefined ? undefined : imagesOf(got.data));
  const want = pollEveryMs(since, Date.now());
  useEffect(() => {
    if (want !== everyMs) setEveryMs(want);
  }, [want, everyMs]);
  return got;
}

/** The images of one volume, or of all (volume ""). */
export function useImages(volume = ""): Polled<{ images: Image[] }> {
  const { client } = useSession();
  return useHealPolled(() => client.call("ImageService/ListImages", volume ? { volume } : {}), volume, (d) => d.images);
}

export function useImage(volume: string, name: string): Polled<{ image?: Image }> {
  const { client } = useSession();
  return useHealPolled(() => client.call("ImageService/GetImage", { volume, name }), `${volume}/${name}`, (d) => (d.image ? [d.image] : []));
}
