// The contract every Raft transport passes (STYLE.md: one interface, one shared contract test).
import { afterEach, expect, it } from "vitest";
import { EntryType, MessageType, type Message, type NodeId } from "../types.ts";
import type { Transport } from "./transport.ts";

export interface TransportFixture {
  /** Creates and starts a transport for `id`; returns it with the address peers should use. */
  make(id: NodeId): Promise<{ transport: Transport; address: string }>;
}

function message(from: NodeId, to: NodeId, index: number, bytes = 8): Message {
  return {
    type: MessageType.App, from, to, term: 1, logTerm: 1, index, commit: 0, reject: false, rejectHint: 0,
    entries: [{ term: 1, index: index + 1, type: EntryType.Normal, data: new Uint8Array(bytes).fill(index % 256) }],
  };
}

async function until(cond: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export function transportContract(fixture: TransportFixture): void {
  const started: Transport[] = [];
  afterEach(async () => {
    await Promise.all(started.splice(0).map((t) => t.stop()));
  });

  async function pair() {
    const received: Message[] = [];
    const snapshots: Array<[NodeId, boolean]> = [];
    const a = await fixture.make(1);
    const b = await fixture.make(2);
    started.push(a.transport, b.transport);
    await a.transport.start({ deliver: () => undefined, unreachable: () => undefined, snapshotStatus: (id, ok) => snapshots.push([id, ok]) });
    await b.transport.start({ deliver: (ms) => received.push(...ms), unreachable: () => undefined, snapshotStatus: () => undefined });
    a.transport.setPeer(2, b.address);
    return { a: a.transport, received, snapshots };
  }

  it("delivers messages to a peer in the order they were sent", async () => {
    const { a, received } = await pair();
    for (let i = 0; i < 500; i++) a.send([message(1, 2, i)]);
    await until(() => received.length === 500, 10_000);
    expect(received.map((m) => m.index)).toEqual(Array.from({ length: 500 }, (_, i) => i));
    expect(received[7]!.entries[0]!.data[0]).toBe(7);
  });

  it("drops messages to peers it does not know, without throwing", async () => {
    const { a, received } = await pair();
    a.send([message(1, 3, 1), message(1, 2, 2)]);
    await until(() => received.length === 1, 10_000);
    expect(received[0]!.index).toBe(2);
  });

  it("carries a snapshot larger than one chunk whole and reports success", async () => {
    const { a, received, snapshots } = await pair();
    const data = new Uint8Array(3 * 1024 * 1024 + 17).map((_, i) => i % 251);
    a.send([{ ...message(1, 2, 9), type: MessageType.Snap, entries: [], snapshot: { metadata: { index: 9, term: 1, confState: { voters: [1, 2], learners: [] } }, data } }]);
    await until(() => received.length === 1 && snapshots.length === 1, 10_000);
    expect(Buffer.compare(Buffer.from(received[0]!.snapshot!.data), Buffer.from(data))).toBe(0);
    expect(received[0]!.snapshot!.metadata.confState.voters).toEqual([1, 2]);
    expect(snapshots).toEqual([[2, true]]);
  });
}
