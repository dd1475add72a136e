// The API's event stream, shared by the pages: one EventSource on EventService/Watch (GET with
// the session cookie, Server-Sent Events of proto3 JSON Events) while any page listens. After an
// error it reconnects with after_id = the last event seen, and tells every listener that events
// may have been missed (so each reloads once). Pages keep a slow poll as a fallback regardless.

/** An event as the pages use it (proto3 JSON: the int64 id is a decimal string). */
export interface ApiEvent {
  id: string;
  kind: string;
  object: string;
  fields: Record<string, string>;
  /** When it happened (epoch ms; 0 when the server did not say). */
  timeMs: number;
  /** One line for people. */
  message: string;
}

/** Called with each event, or with undefined when the stream reconnected and events may be lost. */
export type EventListener = (e: ApiEvent | undefined) => void;

/** What the hub needs of the browser's EventSource (a fake one in tests). */
export interface StreamLike {
  onopen: ((ev: Event) => unknown) | null;
  onmessage: ((ev: MessageEvent<string>) => unknown) | null;
  addEventListener(type: "error", fn: () => void): void;
  close(): void;
}

export interface EventHubDeps {
  open(url: string): StreamLike;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Wait after a failed or dropped stream before opening it again (the node may be restarting). */
export const reconnectDelayMs = 3_000;

export const watchPath = "/api/v1/trivet.v1.EventService/Watch";

/** The stream's URL: every kind and object, resuming after `afterId` ("0": only new events). */
export function watchUrl(afterId: string): string {
  return `${watchPath}?request=${encodeURIComponent(JSON.stringify({ afterId }))}`;
}

/** One `data:` payload as an ApiEvent; undefined when it is not an event (ignored). */
export function parseEvent(data: string): ApiEvent | undefined {
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null) return undefined;
  const o = v as { id?: unknown; kind?: unknown; object?: unknown; fields?: unknown; timeMs?: unknown; message?: unknown };
  if (typeof o.kind !== "string") return undefined;
  const fields = typeof o.fields === "object" && o.fields !== null ? (o.fields as Record<string, string>) : {};
  const timeMs = Number(o.timeMs ?? 0);
  return {
    id: String(o.id ?? "0"), kind: o.kind, object: typeof o.object === "string" ? o.object : "", fields,
    timeMs: Number.isFinite(timeMs) ? timeMs : 0, message: typeof o.message === "string" ? o.message : "",
  };
}

export interface EventHub {
  /** Starts listening (opening the stream if it is the first listener); returns the unsubscribe. */
  subscribe(listener: EventListener): () => void;
}

export function createEventHub(deps: EventHubDeps): EventHub {
  const listeners = new Set<EventListener>();
  let stream: StreamLike | undefined;
  let retry: unknown;
  let lastId = "0";
  let missed = false;

  const notify = (e: ApiEvent | undefined) => {
    for (const l of [...listeners]) l(e);
  };
  const connect = () => {
    retry = undefined;
    const s = deps.open(watchUrl(lastId));
    stream = s;
    s.onopen = () => {
      if (missed) notify(undefined);
      missed = false;
    };
    s.onmessage = (m) => {
      const e = parseEvent(m.data);
      if (!e) return;
      if (e.id !== "0") lastId = e.id;
      notify(e);
    };
    // A dropped connection, or the server's `event: error`: reopen ourselves with the last id
    // (EventSource's own retry would resend the first URL and miss or repeat events).
    s.addEventListener("error", () => {
      if (stream !== s) return;
      s.close();
      stream = undefined;
      missed = true;
      if (listeners.size > 0) retry = deps.setTimeout(connect, reconnectDelayMs);
    });
  };
  return {
    subscribe(listener) {
      listeners.add(listener);
      if (!stream && retry === undefined) connect();
      return () => {
        listeners.delete(listener);
        if (listeners.size > 0) return;
        stream?.close();
        stream = undefined;
        if (retry !== undefined) deps.clearTimeout(retry);
        retry = undefined;
        // The next page loads its data afresh: no need to replay what happened meanwhile.
        lastId = "0";
        missed = false;
      };
    },
  };
}

let shared: EventHub | undefined;

/** The page's one hub over the browser's EventSource (created on first use). */
export function sharedEventHub(): EventHub {
  shared ??= createEventHub({
    open: (url) => new EventSource(url, { withCredentials: true }),
    setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
    clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
  });
  return shared;
}
