// Membership changes, one node at a time (no joint consensus): validation of a ConfChange
// against a configuration, its application, and the compact binary encoding carried in
// EntryType.ConfChange entries.
//
// Encoding (version 1): [1][type u8][nodeId f64 big-endian][context bytes...].

import { ConfChangeType, RaftError, type ConfChange, type ConfState } from "./types.ts";

const confChangeVersion = 1;
const headerBytes = 10;

export function encodeConfChange(cc: ConfChange): Uint8Array {
  const ctx = cc.context ?? new Uint8Array(0);
  const out = new Uint8Array(headerBytes + ctx.length);
  const view = new DataView(out.buffer);
  view.setUint8(0, confChangeVersion);
  view.setUint8(1, cc.type);
  view.setFloat64(2, cc.nodeId);
  out.set(ctx, headerBytes);
  return out;
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  if (data.length < headerBytes || data[0] !== confChangeVersion) {
    throw new RaftError("invalid", `decoding conf change: expected version ${confChangeVersion} and >= ${headerBytes} bytes, got ${data.length} bytes`);
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const type = view.getUint8(1);
  if (type !== ConfChangeType.AddVoter && type !== ConfChangeType.AddLearner && type !== ConfChangeType.RemoveNode) {
    throw new RaftError("invalid", `decoding conf change: unknown type ${type}`);
  }
  const nodeId = view.getFloat64(2);
  const cc: ConfChange = { type, nodeId };
  if (data.length > headerBytes) cc.context = data.slice(headerBytes);
  return cc;
}

/** Why `cc` cannot be applied to `cs`, or undefined if it can. */
export function confChangeProblem(cs: ConfState, cc: ConfChange): string | undefined {
  if (!Number.isInteger(cc.nodeId) || cc.nodeId <= 0) return `node id ${cc.nodeId} is not a positive integer`;
  const isVoter = cs.voters.includes(cc.nodeId);
  switch (cc.type) {
    case ConfChangeType.AddVoter:
      return isVoter ? `node ${cc.nodeId} is already a voter` : undefined;
    case ConfChangeType.AddLearner:
      // Demoting a voter is refused: remove it instead, then add it back as a learner.
      if (isVoter) return `node ${cc.nodeId} is a voter; demotion to learner is not supported`;
      return cs.learners.includes(cc.nodeId) ? `node ${cc.nodeId} is already a learner` : undefined;
    case ConfChangeType.RemoveNode:
      if (!isVoter && !cs.learners.includes(cc.nodeId)) return `node ${cc.nodeId} is not a member`;
      if (isVoter && cs.voters.length === 1) return `node ${cc.nodeId} is the last voter`;
      return undefined;
  }
}

/** The configuration after `cc`; `cs` unchanged when the change is invalid. */
export function applyToConfState(cs: ConfState, cc: ConfChange): ConfState {
  if (confChangeProblem(cs, cc) !== undefined) return cs;
  const voters = cs.voters.filter((id) => id !== cc.nodeId);
  const learners = cs.learners.filter((id) => id !== cc.nodeId);
  if (cc.type === ConfChangeType.AddVoter) voters.push(cc.nodeId);
  if (cc.type === ConfChangeType.AddLearner) learners.push(cc.nodeId);
  return { voters: voters.sort((a, b) => a - b), learners: learners.sort((a, b) => a - b) };
}

export function describeConfChange(cc: ConfChange): string {
  const prefix = cc.type === ConfChangeType.AddVoter ? "v" : cc.type === ConfChangeType.AddLearner ? "l" : "r";
  return `${prefix}${cc.nodeId}`;
}
