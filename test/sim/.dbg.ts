import { RaftNode, describeReady } from "../../core/raft/node.ts";
import { runSeed } from "./run.ts";
const target = Number(process.env.NODE_ID ?? "0");
const origReady = RaftNode.prototype.ready;
const origStep = RaftNode.prototype.step;
const origAdv = RaftNode.prototype.advance;
RaftNode.prototype.ready = function (this: RaftNode) {
  const rd = origReady.call(this);
  const st = this.status();
  if (!target || st.id === target) console.log(`READY n${st.id} commit=${st.commit} applied=${st.applied} ${describeReady(rd)}`);
  return rd;
};
RaftNode.prototype.step = function (this: RaftNode, m) {
  const st = this.status();
  if (!target || st.id === target) console.log(`STEP n${st.id} ${m.type} from ${m.from} t${m.term} idx${m.index} commit${m.commit} ents${m.entries.length} snap${m.snapshot?.metadata.index ?? "-"}`);
  return origStep.call(this, m);
};
RaftNode.prototype.advance = function (this: RaftNode, rd) {
  const st = this.status();
  if (!target || st.id === target) console.log(`ADVANCE n${st.id} commit=${st.commit} applied=${st.applied}`);
  return origAdv.call(this, rd);
};
const r = runSeed({ seed: Number(process.env.SEED ?? 1), voters: Number(process.env.VOTERS ?? 3), steps: Number(process.env.STEPS ?? 20000) });
console.log(r.violation?.stack);
