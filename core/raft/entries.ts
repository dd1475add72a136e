// Small helpers over entry slices shared by the log, the leader and storage: size accounting
// (the unit of every byte bound in RaftConfig) and size-limited slicing.

import type { Entry } from "./types.ts";

/** Overhead charged per entry besides its payload (term, index, type), so empty entries are not free. */
const entryOverheadBytes = 16;

export function entrySize(e: Entry): number {
  return e.data.length + entryOverheadBytes;
}

/** Sum of payload bytes only: the unit of maxUncommittedEntriesBytes (empty entries cost nothing). */
export function payloadSize(ents: readonly Entry[]): number {
  let n = 0;
  for (const e of ents) n += e.data.length;
  return n;
}

/** The longest prefix of `ents` within `maxBytes`, but always at least one entry. */
export function limitSize(ents: Entry[], maxBytes: number): Entry[] {
  if (ents.length <= 1) return ents;
  let size = entrySize(ents[0]!);
  let n = 1;
  for (; n < ents.length; n++) {
    size += entrySize(ents[n]!);
    if (size > maxBytes) break;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}
