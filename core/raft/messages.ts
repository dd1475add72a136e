// Message construction shared by every role: one object shape for all messages (keeps the hot
// path monomorphic) and the context that marks a leadership-transfer campaign.

import { NONE, type Entry, type Message, type MessageType, type NodeId } from "./types.ts";

/** Marks a Vote/TimeoutNow-triggered campaign as a leadership transfer (bypasses leader leases). */
export const transferContext = new Uint8Array([0x74, 0x72, 0x61, 0x6e, 0x73, 0x66, 0x65, 0x72]); // "transfer"

export function isTransferContext(ctx: Uint8Array | undefined): boolean {
  if (!ctx || ctx.length !== transferContext.length) return false;
  for (let i = 0; i < ctx.length; i++) if (ctx[i] !== transferContext[i]) return false;
  return true;
}

/** Shared by messages without entries; frozen so that no holder can grow it by accident. */
const emptyEntries = Object.freeze([]) as unknown as Entry[];

/** A message with every required field present (one object shape for the hot path). */
export function newMessage(type: MessageType, to: NodeId, f?: Partial<Message>): Message {
  if (!f) return { type, from: NONE, to, term: 0, logTerm: 0, index: 0, entries: emptyEntries, commit: 0, reject: false, rejectHint: 0 };
  const m: Message = {
    type, from: f.from ?? NONE, to, term: f.term ?? 0, logTerm: f.logTerm ?? 0, index: f.index ?? 0,
    entries: f.entries ?? emptyEntries, commit: f.commit ?? 0, reject: f.reject ?? false, rejectHint: f.rejectHint ?? 0,
  };
  if (f.logTermHint !== undefined) m.logTermHint = f.logTermHint;
  if (f.snapshot !== undefined) m.snapshot = f.snapshot;
  if (f.context !== undefined) m.context = f.context;
  return m;
}
