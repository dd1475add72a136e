// Progress of a long byte transfer on the command line (an image upload): on a terminal one
// line redrawn in place — a bar, the percentage, bytes done of total and the rate in MiB/s; into
// a pipe or a log, plain lines at most every plainLineIntervalMs, so logs stay readable. The
// line is a pure function of the counts and the elapsed time; the clock comes in.
import { formatBytes } from "./sizes.ts";

/** How often a terminal line is redrawn at most. */
export const ttyRedrawIntervalMs = 100;
/** How often a plain (non-terminal) progress line is written at most. */
export const plainLineIntervalMs = 2_000;
export const barChars = 24;

export interface ProgressFigures {
  doneBytes: number;
  totalBytes: number;
  elapsedMs: number;
}

/** 0 to 100, whole; an empty transfer is complete. */
export function percentOf(doneBytes: number, totalBytes: number): number {
  if (totalBytes <= 0) return 100;
  return Math.min(100, Math.floor((doneBytes * 100) / totalBytes));
}

/** MiB/s over the elapsed time, one decimal; "-" before any time has passed. */
export function rateText(doneBytes: number, elapsedMs: number): string {
  if (elapsedMs <= 0) return "- MiB/s";
  return `${(doneBytes / 1024 ** 2 / (elapsedMs / 1000)).toFixed(1)} MiB/s`;
}

export function bar(doneBytes: number, totalBytes: number, width = barChars): string {
  const filled = Math.floor((percentOf(doneBytes, totalBytes) * width) / 100);
  return `[${"#".repeat(filled)}${".".repeat(width - filled)}]`;
}

/** "debian.iso [######..........]  25%  1 MiB / 4 MiB  2.0 MiB/s" */
export function progressLine(label: string, f: ProgressFigures, withBar: boolean): string {
  const percent = `${String(percentOf(f.doneBytes, f.totalBytes)).padStart(3)}%`;
  const parts = [label, ...(withBar ? [bar(f.doneBytes, f.totalBytes)] : []), percent, `${formatBytes(f.doneBytes)} / ${formatBytes(f.totalBytes)}`, rateText(f.doneBytes, f.elapsedMs)];
  return parts.join("  ");
}

export interface ProgressOptions {
  out: NodeJS.WritableStream;
  /** Redraw in place (a terminal) or write plain lines. */
  tty: boolean;
  label: string;
  totalBytes: number;
  nowMs?: () => number;
}

/** Reports a transfer; `update` as bytes move, `end` once (also after a failure, to end the line). */
export class Progress {
  private readonly nowMs: () => number;
  private readonly startedMs: number;
  private lastWrittenMs = -Infinity;
  private doneBytes = 0;
  private writtenBytes = -1;
  private drawn = false;
  private ended = false;

  constructor(private readonly o: ProgressOptions) {
    this.nowMs = o.nowMs ?? Date.now;
    this.startedMs = this.nowMs();
  }

  update(doneBytes: number): void {
    this.doneBytes = doneBytes;
    const now = this.nowMs();
    if (now - this.lastWrittenMs < (this.o.tty ? ttyRedrawIntervalMs : plainLineIntervalMs)) return;
    this.write(now);
  }

  /** Writes the final figures (when `completed`) and ends a terminal line. */
  end(completed: boolean): void {
    if (this.ended) return;
    this.ended = true;
    if (completed && this.writtenBytes !== this.doneBytes) this.write(this.nowMs());
    if (this.o.tty && this.drawn) this.o.out.write("\n");
  }

  private write(now: number): void {
    this.lastWrittenMs = now;
    this.writtenBytes = this.doneBytes;
    const line = progressLine(this.o.label, { doneBytes: this.doneBytes, totalBytes: this.o.totalBytes, elapsedMs: now - this.startedMs }, this.o.tty);
    // "\x1b[K" clears what a longer previous line left on the right.
    this.o.out.write(this.o.tty ? `\r${line}\x1b[K` : `${line}\n`);
    this.drawn = true;
  }
}
