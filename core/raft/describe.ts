// Deterministic one-line renderings of entries, messages, hard states and Readys, used by the
// scenario tests (their expected outputs) and by debug logs. Payloads print as text when they
// are printable ASCII, else as hex, so outputs are stable and readable.

import { decodeConfChange, describeConfChange } from "./confchange.ts";
import { EntryType, MessageType, type ConfState, type Entry, type HardState, type Message, type Ready } from "./types.ts";

function describeData(data: Uint8Array): string {
  let printable = true;
  for (const b of data) if (b < 0x20 || b > 0x7e) printable = false;
  if (printable) return JSON.stringify(String.fromCharCode(...data));
  return "0x" + Array.from(data, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function describeEntry(e: Entry): string {
  if (e.type === EntryType.ConfChange) {
    let cc: string;
    try {
      cc = describeConfChange(decodeConfChange(e.data));
    } catch {
      cc = describeData(e.data);
    }
    return `${e.term}/${e.index} ConfChange ${cc}`;
  }
  return `${e.term}/${e.index} ${e.data.length === 0 ? "Normal (empty)" : "Normal " + describeData(e.data)}`;
}

export function describeEntries(ents: readonly Entry[]): string {
  return ents.map(describeEntry).join(", ");
}

export function describeHardState(hs: HardState): string {
  return `Term:${hs.term} Vote:${hs.vote} Commit:${hs.commit}`;
}

export function describeConfState(cs: ConfState): string {
  return `voters=(${cs.voters.join(" ")})${cs.learners.length > 0 ? ` learners=(${cs.learners.join(" ")})` : ""}`;
}

export function describeMessage(m: Message): string {
  let s = `${m.from}->${m.to} Msg${MessageType[m.type]} Term:${m.term}`;
  switch (m.type) {
    case MessageType.App:
      s += ` Log:${m.logTerm}/${m.index} Commit:${m.commit}`;
      if (m.entries.length > 0) s += ` Entries:[${describeEntries(m.entries)}]`;
      break;
    case MessageType.AppResp:
      s += m.reject ? ` Reject Index:${m.index} Hint:${m.rejectHint}/${m.logTermHint ?? 0}` : ` Index:${m.index}`;
      break;
    case MessageType.Vote:
    case MessageType.PreVote:
      s += ` Log:${m.logTerm}/${m.index}`;
      break;
    case MessageType.VoteResp:
    case MessageType.PreVoteResp:
      if (m.reject) s += " Rejected";
      break;
    case MessageType.Heartbeat:
      s += ` Commit:${m.commit}`;
      break;
    case MessageType.Snap:
      if (m.snapshot) {
        const md = m.snapshot.metadata;
        s += ` Snapshot:${md.term}/${md.index} ${describeConfState(md.confState)}`;
      }
      break;
    case MessageType.ReadIndexResp:
      s += ` Index:${m.index}`;
      break;
    case MessageType.Prop:
      s += ` Entries:[${describeEntries(m.entries)}]`;
      break;
  }
  if (m.context && m.context.length > 0) s += ` Ctx:${describeData(m.context)}`;
  return s;
}

/** The Ready as indented lines (no blank lines), in the order the driver must act on it. */
export function describeReady(rd: Ready): string[] {
  const out: string[] = [`Ready MustSync=${rd.mustSync}:`];
  if (rd.softState) out.push(`State:${rd.softState.role} Lead:${rd.softState.leader}`);
  if (rd.hardState) out.push(`HardState ${describeHardState(rd.hardState)}`);
  if (rd.snapshot) {
    const md = rd.snapshot.metadata;
    out.push(`Snapshot ${md.term}/${md.index} ${describeConfState(md.confState)}`);
  }
  if (rd.entries.length > 0) out.push("Entries:", ...rd.entries.map((e) => "  " + describeEntry(e)));
  if (rd.committedEntries.length > 0) out.push("CommittedEntries:", ...rd.committedEntries.map((e) => "  " + describeEntry(e)));
  if (rd.messages.length > 0) out.push("Messages:", ...rd.messages.map((m) => "  " + describeMessage(m)));
  if (rd.readStates.length > 0) {
    out.push("ReadStates:", ...rd.readStates.map((s) => `  Index:${s.index} Ctx:${describeData(s.requestCtx)}`));
  }
  return out;
}
