// Command line of the deterministic simulator:
//   npm run sim -- --seeds N [--seed S] [--nodes 3|5] [--steps M] [--verbose] [--mutate lying-disk|stale-reads]
// Runs seeds S, S+1, … (S random when not given), prints a summary, and for each failing seed
// the exact command that replays it. Exit code 1 if any seed failed. --mutate injects a bug on
// purpose (a disk that lies about fsync, reads that skip ReadIndex) to watch the checkers fire.

import { runSeed, type RunResult } from "./run.ts";

export const defaultSteps = 20_000;

interface Args {
  seeds: number;
  seed: number | undefined;
  nodes: number[];
  steps: number;
  verbose: boolean;
  mutate: Mutation | undefined;
}

const mutations = ["lying-disk", "stale-reads"] as const;
type Mutation = (typeof mutations)[number];
/** Chance that an fsync is a lie under --mutate lying-disk. */
const lyingDiskSyncLieRate = 0.3;

class UsageError extends Error {}

function parseArgs(argv: string[]): Args {
  const args: Args = { seeds: 1, seed: undefined, nodes: [3, 5], steps: defaultSteps, verbose: false, mutate: undefined };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const int = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isSafeInteger(v) || v < 0) throw new UsageError(`${flag} needs a non-negative integer (got ${JSON.stringify(argv[i])})`);
      return v;
    };
    if (flag === "--seeds") args.seeds = int();
    else if (flag === "--seed") args.seed = int();
    else if (flag === "--steps") args.steps = int();
    else if (flag === "--verbose") args.verbose = true;
    else if (flag === "--mutate") {
      const m = argv[++i];
      if (!mutations.includes(m as Mutation)) throw new UsageError(`--mutate must be one of ${mutations.join(", ")} (got ${JSON.stringify(m)})`);
      args.mutate = m as Mutation;
    }
    else if (flag === "--nodes") {
      const n = int();
      if (n !== 3 && n !== 5) throw new UsageError(`--nodes must be 3 or 5 (got ${n})`);
      args.nodes = [n];
    } else throw new UsageError(`unknown argument ${JSON.stringify(flag)}`);
  }
  return args;
}

function replayCommand(r: RunResult, args: Args): string {
  const stepsArg = args.steps === defaultSteps ? "" : ` --steps ${args.steps}`;
  const mutateArg = args.mutate === undefined ? "" : ` --mutate ${args.mutate}`;
  return `npm run sim -- --seed ${r.seed} --nodes ${r.voters}${stepsArg}${mutateArg}`;
}

function describe(r: RunResult): string {
  const c = r.cluster;
  return `seed=${r.seed} nodes=${r.voters} events=${r.events} virtual=${r.virtualMs}ms ops=${r.operations} ` +
    `(ok ${r.clients.ok}, fail ${r.clients.fail}, info ${r.clients.info}) elections=${c.elections} crashes=${c.crashes} ` +
    `torn=${c.tornWrites} snapshots=${c.snapshotsCreated}/${c.snapshotsInstalled} confChanges=${r.operator.confChangesProposed} ` +
    `cycles=${r.operator.membershipCycles} transfers=${r.operator.transfers} trace=${r.traceHash}`;
}

function main(): number {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`sim: ${err.message}\nusage: npm run sim -- --seeds N [--seed S] [--nodes 3|5] [--steps M] [--verbose] [--mutate ${mutations.join("|")}]`);
    return 2;
  }
  const first = args.seed ?? Math.floor(Math.random() * 1_000_000_000);
  const started = performance.now();
  const total = { seeds: 0, failed: 0, ops: 0, elections: 0, crashes: 0, installed: 0, torn: 0, events: 0 };
  for (let i = 0; i < args.seeds; i++) {
    for (const voters of args.nodes) {
      const r = runSeed({
        seed: first + i, voters, steps: args.steps, log: args.verbose ? (l) => console.log(l) : undefined,
        syncLieRate: args.mutate === "lying-disk" ? lyingDiskSyncLieRate : 0, staleReads: args.mutate === "stale-reads",
      });
      total.seeds++;
      total.ops += r.operations;
      total.elections += r.cluster.elections;
      total.crashes += r.cluster.crashes;
      total.installed += r.cluster.snapshotsInstalled;
      total.torn += r.cluster.tornWrites;
      total.events += r.events;
      if (args.verbose) console.log(describe(r));
      if (r.violation !== undefined) {
        total.failed++;
        console.log(`FAIL seed=${r.seed} nodes=${r.voters}: ${r.violation.message}`);
        if (args.verbose && r.violation.stack) console.log(r.violation.stack);
        console.log(`  replay: ${replayCommand(r, args)}`);
      }
    }
  }
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `sim: ${total.seeds} runs (seeds ${first}..${first + args.seeds - 1}, nodes ${args.nodes.join("+")}), ${total.failed} failed; ` +
      `${total.ops} client ops, ${total.elections} elections, ${total.crashes} crashes (${total.torn} mid-persist), ` +
      `${total.installed} snapshots installed, ${total.events} events in ${secs} s`,
  );
  return total.failed > 0 ? 1 : 0;
}

process.exitCode = main();
