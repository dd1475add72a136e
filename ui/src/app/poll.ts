// Loading a page's data: now, again when a relevant event arrives on the API's event stream, and
// on a slow poll as a fallback so that a missed event cannot leave the page stale for long.
import { useCallback, useEffect, useRef, useState } from "react";
import { ApiCallError } from "../api/client.ts";
import { sharedEventHub, type ApiEvent } from "../api/events.ts";

/** The fallback reload of live pages (VM list/detail, dashboard, nodes); events drive the rest. */
export const fallbackRefreshMs = 15_000;

export interface Polled<T> {
  data: T | undefined;
  error: ApiCallError | undefined;
  /** When the data was last loaded (epoch ms). */
  loadedAtMs: number;
  reload(): void;
}

/** Which events make a page reload. */
export type EventFilter = (e: ApiEvent) => boolean;

/** What the cluster status (dashboard, nodes page) shows: node health and who leads. */
export const isClusterEvent: EventFilter = (e) => e.kind === "node.health" || e.kind === "cluster.leader";

/**
 * Calls `load` now, every `everyMs` (0: once), whenever `key` changes (the request's inputs) and,
 * with `live`, on each matching event (or after the stream reconnected); keeps the last good data
 * when a call fails.
 */
export function usePolled<T>(load: () => Promise<T>, everyMs: number, key = "", live?: EventFilter): Polled<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<ApiCallError>();
  const [loadedAtMs, setLoadedAtMs] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  const liveRef = useRef(live);
  liveRef.current = live;
  // One load at a time: a reload asked for meanwhile (a burst of events) runs once it is done.
  const busy = useRef<"idle" | "loading" | "again">("idle");
  const reload = useCallback(function reloadNow(): void {
    if (busy.current !== "idle") { busy.current = "again"; return; }
    busy.current = "loading";
    loadRef.current().then(
      (d) => { setData(d); setError(undefined); setLoadedAtMs(Date.now()); },
      (e: unknown) => setError(e instanceof ApiCallError ? e : new ApiCallError("internal", String(e), 0)),
    ).finally(() => {
      const again = busy.current === "again";
      busy.current = "idle";
      if (again) reloadNow();
    });
  }, []);
  useEffect(() => {
    reload();
    if (everyMs <= 0) return;
    const t = setInterval(reload, everyMs);
    return () => clearInterval(t);
  }, [reload, everyMs, key]);
  const isLive = live !== undefined;
  useEffect(() => {
    if (!isLive) return;
    return sharedEventHub().subscribe((e) => {
      if (!e || liveRef.current?.(e)) reload();
    });
  }, [reload, isLive]);
  return { data, error, loadedAtMs, reload };
}
