// Entry point of the `trivet` executable: sub-command dispatch. Commands are defined next to
// their area and listed in cmd/registry.ts.
import { findCommand, helpText, UsageError } from "./commands.ts";
import { commands } from "./registry.ts";
import { buildInfo } from "./version.ts";

/**
 * grpc-js sends an IP literal as TLS server name when dialling a node by address, which Node
 * flags (DEP0123) on every process; node certificates carry IP SANs, so the check is sound.
 */
function silenceIpServernameWarning(): void {
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((warning: unknown, ...rest: unknown[]) => {
    const code = typeof rest[0] === "object" && rest[0] !== null ? (rest[0] as { code?: string }).code : rest[1];
    if (code === "DEP0123") return;
    emit(warning, ...rest);
  }) as typeof process.emitWarning;
}

/** "code: message (field x)" for typed errors (API, cluster, state), the message otherwise. */
function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const e = err as Error & { code?: unknown; field?: unknown };
  const code = typeof e.code === "string" ? `${e.code}: ` : "";
  const field = typeof e.field === "string" && !e.message.includes(e.field) ? ` (field ${e.field})` : "";
  return `${code}${e.message}${field}`;
}

export async function main(argv: string[]): Promise<number> {
  silenceIpServernameWarning();
  const version = buildInfo().version;
  if (argv.length === 0 || argv[0] === "help" || argv[0] === "--help" || argv[0] === "-h") {
    const topic = argv[0] === "help" ? argv.slice(1) : [];
    const found = topic.length > 0 ? findCommand(commands, topic) : undefined;
    if (found) {
      process.stdout.write(`Usage: trivet ${found.command.path.join(" ")} ${found.command.usage ?? ""}\n\n${found.command.summary}\n`);
    } else {
      process.stdout.write(helpText(commands, version));
    }
    return 0;
  }
  if (argv[0] === "--version") argv = ["version"];
  const found = findCommand(commands, argv);
  if (!found) {
    process.stderr.write(`trivet: unknown command '${argv.join(" ")}'; run 'trivet help' for the list\n`);
    return 2;
  }
  try {
    return await found.command.run({ argv: found.rest, stdout: process.stdout, stderr: process.stderr });
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`trivet ${found.command.path.join(" ")}: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`trivet ${found.command.path.join(" ")}: ${describeError(err)}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => { process.stderr.write(`trivet: ${String(err)}\n`); process.exitCode = 1; },
);
