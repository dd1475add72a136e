// Periodic reloading of a page's data until the API's event stream drives live updates.
import { useCallback, useEffect, useRef, useState } from "react";
import { ApiCallError } from "../api/client.ts";

/** How often the dashboard and the nodes page ask for the cluster status again. */
export const statusRefreshMs = 2_000;

export interface Polled<T> {
  data: T | undefined;
  error: ApiCallError | undefined;
  /** When the data was last loaded (epoch ms). */
  loadedAtMs: number;
  reload(): void;
}

/**
 * Calls `load` now, every `everyMs` (0: once) and whenever `key` changes (the request's inputs);
 * keeps the last good data when a call fails.
 */
export function usePolled<T>(load: () => Promise<T>, everyMs: number, key = ""): Polled<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<ApiCallError>();
  const [loadedAtMs, setLoadedAtMs] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  const reload = useCallback(() => {
    loadRef.current().then(
      (d) => { setData(d); setError(undefined); setLoadedAtMs(Date.now()); },
      (e: unknown) => setError(e instanceof ApiCallError ? e : new ApiCallError("internal", String(e), 0)),
    );
  }, []);
  useEffect(() => {
    reload();
    if (everyMs <= 0) return;
    const t = setInterval(reload, everyMs);
    return () => clearInterval(t);
  }, [reload, everyMs, key]);
  return { data, error, loadedAtMs, reload };
}
