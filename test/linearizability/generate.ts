// Generates key/value histories that are linearizable by construction, for testing the checker:
// a sequential in-memory map executes the operations one by one at strictly increasing
// linearization points, and each recorded interval is drawn around its point. Some operations
// fail (not applied) or become indeterminate (applied or not, at random). Seeded: same seed,
// same history.

import { HistoryRecorder } from "./history.ts";
import type { Operation } from "./history.ts";
import { kv } from "./model.ts";
import type { KvEntry, KvInput, KvOutput } from "./model.ts";

export interface GenerateOptions {
  seed: number;
  operations: number;
  keys: number;
  clients: number;
  /** Upper bound of the gap between consecutive linearization points. */
  gapNsMax: number;
  /** Upper bound of the distance from a linearization point to its invocation or return. */
  spreadNsMax: number;
  /** Probability that an operation ends indeterminate (half of those take effect). */
  infoProbability: number;
  /** Probability that an operation is rejected before taking effect. */
  failProbability: number;
}

/** mulberry32: a small seeded generator, so failures reproduce from the seed alone. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pickInput(rand: () => number, key: string, i: number, current: KvEntry | undefined): KvInput {
  const r = rand();
  if (r < 0.35) return kv.put(key, `v${i}`);
  if (r < 0.7) return kv.get(key);
  if (r < 0.77) return kv.delete(key);
  const version = current?.version ?? 0;
  const expected = rand() < 0.6 ? version : Math.max(0, version + (rand() < 0.5 ? -1 : 1));
  return kv.cas(key, expected, `v${i}`);
}

/** Executes `input` on the sequential map; returns what the client would be told. */
function execute(map: Map<string, KvEntry>, input: KvInput, rand: () => number): KvOutput {
  const current = map.get(input.key);
  switch (input.op) {
    case "put": {
      const version = (current?.version ?? 0) + 1;
      map.set(input.key, { value: input.value, version });
      return kv.putOk(rand() < 0.5 ? version : undefined);
    }
    case "get":
      return current === undefined ? kv.getOk(null) : kv.getOk(current.value, current.version);
    case "delete":
      map.delete(input.key);
      return kv.deleteOk();
    case "cas":
      if ((current?.version ?? 0) !== input.expectedVersion) return kv.casFail();
      map.set(input.key, { value: input.value, version: input.expectedVersion + 1 });
      return kv.casOk();
  }
}

export function generateKvHistory(options: GenerateOptions): Operation<KvInput, KvOutput>[] {
  const rand = seededRandom(options.seed);
  const map = new Map<string, KvEntry>();
  const recorder = new HistoryRecorder<KvInput, KvOutput>();
  let linNs = options.spreadNsMax;
  for (let i = 0; i < options.operations; i++) {
    linNs += 1 + Math.floor(rand() * options.gapNsMax);
    const key = `k${Math.floor(rand() * options.keys)}`;
    const input = pickInput(rand, key, i, map.get(key));
    const client = `c${Math.floor(rand() * options.clients)}`;
    const invokeNs = linNs - Math.floor(rand() * options.spreadNsMax);
    const returnNs = linNs + Math.floor(rand() * options.spreadNsMax);
    const handle = recorder.invoke(client, input, invokeNs);
    const fate = rand();
    if (fate < options.failProbability) {
      recorder.fail(handle);
    } else if (fate < options.failProbability + options.infoProbability) {
      if (rand() < 0.5) execute(map, input, rand);
      recorder.info(handle);
    } else {
      recorder.ok(handle, execute(map, input, rand), returnNs);
    }
  }
  return recorder.history();
}
