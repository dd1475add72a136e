// The dashboard's "Alerts" and "Recent events" cards: the newest events the browser has seen on
// the stream since sign-in (the event log), alerts being those that call for attention.
import { Card, CardBody, CardTitle } from "@patternfly/react-core";
import { isAlert, useEventLog } from "../api/event-log.ts";
import type { ApiEvent } from "../api/events.ts";
import { formatTime } from "../app/format.ts";
import { navigate } from "../app/router.ts";

/** Rows in each card; the Tasks & events page has them all. */
export const recentEventsShown = 6;

export function EventLine({ e }: { e: ApiEvent }) {
  return (
    <li className="pf-v6-u-mb-xs">
      <span className="pf-v6-u-color-200 pf-v6-u-mr-sm">{formatTime(e.timeMs)}</span>
      {e.message || `${e.kind} ${e.object}`}
    </li>
  );
}

function List({ events, empty, testId }: { events: readonly ApiEvent[]; empty: string; testId: string }) {
  if (events.length === 0) return <p data-testid={testId}>{empty}</p>;
  return <ul data-testid={testId} aria-label={testId === "dash-alerts" ? "Alerts" : "Recent events"}>{events.map((e) => <EventLine key={`${e.id}-${e.timeMs}-${e.object}`} e={e} />)}</ul>;
}

export function RecentEventCards() {
  const log = useEventLog();
  const newest = [...log].reverse();
  const alerts = newest.filter(isAlert).slice(0, recentEventsShown);
  return (
    <>
      <Card>
        <CardTitle>Alerts</CardTitle>
        <CardBody><List events={alerts} empty="No alert since you signed in." testId="dash-alerts" /></CardBody>
      </Card>
      <Card>
        <CardTitle>Recent events</CardTitle>
        <CardBody>
          <List events={newest.slice(0, recentEventsShown)} empty="No event since you signed in." testId="dash-events" />
          <a href="/events" onClick={(ev) => { ev.preventDefault(); navigate("/events"); }}>All events</a>
        </CardBody>
      </Card>
    </>
  );
}
