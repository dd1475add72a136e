// The sub-command table of the `trivet` executable. Each area registers its commands here so
// that `trivet help` lists them all in one place; dispatch is by the first one or two words.

export interface CommandContext {
  argv: string[];
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

export interface Command {
  /** Words that select the command, e.g. ["host", "check"]. */
  path: string[];
  summary: string;
  usage?: string;
  /** Left out of `trivet help` (diagnostics for developers and tests). */
  hidden?: boolean;
  run(ctx: CommandContext): Promise<number>;
}

export class UsageError extends Error {
  readonly code = "usage";
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Finds the command whose path is the longest prefix of argv. */
export function findCommand(commands: readonly Command[], argv: readonly string[]): { command: Command; rest: string[] } | undefined {
  let best: Command | undefined;
  for (const c of commands) {
    if (c.path.length <= argv.length && c.path.every((w, i) => argv[i] === w)) {
      if (!best || c.path.length > best.path.length) best = c;
    }
  }
  return best ? { command: best, rest: argv.slice(best.path.length) } : undefined;
}

export function helpText(commands: readonly Command[], version: string): string {
  const rows = commands.filter((c) => !c.hidden).sort((a, b) => a.path.join(" ").localeCompare(b.path.join(" ")));
  const width = Math.max(...rows.map((c) => c.path.join(" ").length));
  const lines = rows.map((c) => `  ${c.path.join(" ").padEnd(width)}  ${c.summary}`);
  return `trivet ${version} — hyperconverged virtualization for small clusters\n\nUsage: trivet <command> [options]\n\nCommands:\n${lines.join("\n")}\n\nRun 'trivet help <command>' for a command's options.\n`;
}

/** Resolves on the first SIGTERM or SIGINT (a daemon's cue to stop cleanly). */
export function untilStopSignal(): Promise<void> {
  return new Promise<void>((resolve) => {
    process.once("SIGTERM", () => resolve());
    process.once("SIGINT", () => resolve());
  });
}
