import { runSeed } from "/work/main/test/sim/run.ts";
const rate = Number(process.env.RATE ?? 1);
let fails = 0;
for (let s = 1; s <= 20; s++) {
  const r = runSeed({ seed: s, voters: 3, steps: 10000, syncLieRate: rate });
  if (r.violation) { fails++; console.log(s, r.violation.message.split("\n")[0].slice(0, 200)); }
}
console.log("fails", fails);
