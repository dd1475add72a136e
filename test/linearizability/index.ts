// Public API of the linearizability checker used by the Raft simulator and the cluster tests.
//
//   const rec = new HistoryRecorder<KvInput, KvOutput>();
//   const h = rec.invoke(clientId, kv.put("k", "v1"), nowNs);  // before sending the request
//   rec.ok(h, kv.putOk(), laterNs);   // got an answer; or rec.fail(h): surely not applied;
//                                     // or rec.info(h): timed out / connection lost
//   const result = checkLinearizable(kvModel, rec.history(), { timeoutMs: 10_000 });
//   if (result.ok === false) throw new Error(`seed ${seed}\n${result.description}`);
//
// result.ok is true, false (with the failing partition and a shrunk, rendered counterexample)
// or "unknown" (the search ran out of time: treat as a test failure to investigate, not a pass).

export { checkLinearizable, defaultCheckTimeoutMs, defaultShrinkTimeoutMs } from "./checker.ts";
export type { CheckOptions, CheckResult } from "./checker.ts";
export { HistoryRecorder } from "./history.ts";
export type { ClientId, OpHandle, Operation } from "./history.ts";
export { kv, kvModel, LinearizabilityError } from "./model.ts";
export type { KvEntry, KvInput, KvOutput, KvState, Model, Partition, StepResult } from "./model.ts";
export { describeCounterexample, describeOperation, formatNs } from "./render.ts";
export type { Counterexample, LinearizedStep } from "./render.ts";
