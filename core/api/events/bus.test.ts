import { describe, expect, it } from "vitest";
import { EventBus, subscriberQueueMax, SubscriberTooSlowError, type BusEvent } from "./bus.ts";

const ev = (kind: string, object: string) => ({ kind, object, message: `${kind} ${object}`, fields: {} });

async function take(it: AsyncGenerator<BusEvent>, n: number): Promise<BusEvent[]> {
  const out: BusEvent[] = [];
  for (let i = 0; i < n; i++) out.push((await it.next()).value as BusEvent);
  return out;
}

describe("EventBus", () => {
  it("streams live events that match the filter, in order", async () => {
    const bus = new EventBus(() => 1000);
    const ac = new AbortController();
    const it = bus.watch({ kinds: ["node.health"], objectPrefix: "node/" }, 0, ac.signal);
    const got = take(it, 2);
    await Promise.resolve();
    bus.publish(ev("node.health", "node/n1"));
    bus.publish(ev("audit", "node/n1"));
    bus.publish(ev("node.health", "vm/x"));
    bus.publish(ev("node.health", "node/n2"));
    expect((await got).map((e) => e.object)).toEqual(["node/n1", "node/n2"]);
    ac.abort();
    expect((await it.next()).done).toBe(true);
  });

  it("resumes after an id from the ring", async () => {
    const bus = new EventBus();
    const first = bus.publish(ev("audit", "user/a"));
    bus.publish(ev("audit", "user/b"));
    bus.publish(ev("audit", "user/c"));
    const ac = new AbortController();
    const got = await take(bus.watch({ kinds: [], objectPrefix: "" }, first.id, ac.signal), 2);
    expect(got.map((e) => e.object)).toEqual(["user/b", "user/c"]);
    ac.abort();
  });

  it("cuts off a subscriber that falls too far behind", async () => {
    const bus = new EventBus();
    const ac = new AbortController();
    const it = bus.watch({ kinds: [], objectPrefix: "" }, 0, ac.signal);
    const pending = it.next();
    await Promise.resolve();
    for (let i = 0; i <= subscriberQueueMax + 1; i++) bus.publish(ev("audit", `user/${i}`));
    await expect(pending).rejects.toBeInstanceOf(SubscriberTooSlowError);
  });
});
