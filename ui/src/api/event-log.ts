// The events seen on the stream since the console was opened, newest last, bounded: the
// dashboard's "recent events" and the Tasks & events page read it. The Shell starts recording at
// sign-in (recordEvents) so that nothing is missed while another page is shown.
import { createRing, useRing } from "../app/ring.ts";
import { sharedEventHub, type ApiEvent, type EventHub } from "./events.ts";

/** Events kept in the browser; older ones fall off (the audit log keeps mutations for good). */
export const eventLogMaxEvents = 1_000;

export const eventLog = createRing<ApiEvent>(eventLogMaxEvents);

/** Event kinds that call for attention: shown as alerts on the dashboard. */
export function isAlert(e: ApiEvent): boolean {
  if (e.kind === "alert") return true;
  if (e.kind === "node.health") return e.fields.health === "down";
  if (e.kind === "vm.state") return e.fields.state === "crashed" || e.fields.state === "failed";
  if (e.kind === "vm.error") return true;
  if (e.kind === "cluster.leader") return e.fields.leader === "0" || e.fields.leader === "";
  return false;
}

/** Records every event of `hub` into `log` until the returned function is called. */
export function recordEvents(hub: EventHub = sharedEventHub(), log = eventLog): () => void {
  // The time of an event the server did not date is when the browser saw it.
  return hub.subscribe((e) => { if (e) log.push(e.timeMs ? e : { ...e, timeMs: Date.now() }); });
}

export function useEventLog(): readonly ApiEvent[] {
  return useRing(eventLog);
}
