// Structured logging for the daemon: one JSON object a line (time, level, message, fields that
// name the object: node, vm, image, task). Levels below the configured one are dropped.
import type { Logger } from "./raft/types.ts";

export type LogLevel = "debug" | "info" | "warn" | "error";
const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function jsonLogger(out: NodeJS.WritableStream, level: LogLevel = "info", base: Record<string, unknown> = {}): Logger {
  const min = order[level];
  const write = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (order[lvl] < min) return;
    out.write(`${JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...base, ...fields })}\n`);
  };
  return {
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
  };
}

export function parseLogLevel(v: string): LogLevel {
  if (v in order) return v as LogLevel;
  throw new Error(`log level must be one of ${Object.keys(order).join(", ")} (got ${JSON.stringify(v)})`);
}
