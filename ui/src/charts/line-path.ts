// The geometry of the dashboard's line charts: points in time mapped into an SVG box (time on x
// over a fixed window ending now, value on y from 0 to a rounded maximum) and its spoken label.
// Pure, tested.
import type { Point } from "../app/usage.ts";

export interface Box { width: number; height: number }

/** A y-axis top at or above `max` that reads well: 1, 2 or 5 times a power of ten (at least 1). */
export function niceMax(max: number): number {
  if (!(max > 1)) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
  return 10 * p;
}

/** The SVG path ("M x y L x y …") of `points` in `box`; "" without points. One point draws a dot-long segment. */
export function linePath(points: readonly Point[], box: Box, fromMs: number, toMs: number, yMax: number): string {
  if (points.length === 0) return "";
  const span = Math.max(1, toMs - fromMs);
  const x = (t: number) => (Math.min(Math.max(t, fromMs), toMs) - fromMs) / span * box.width;
  const y = (v: number) => box.height - Math.min(Math.max(v, 0), yMax) / yMax * box.height;
  const r = (n: number) => Math.round(n * 10) / 10;
  const cmds = points.map((p, i) => `${i === 0 ? "M" : "L"}${r(x(p.atMs))} ${r(y(p.value))}`);
  if (points.length === 1) cmds.push(`L${r(x(points[0]!.atMs) + 1)} ${r(y(points[0]!.value))}`);
  return cmds.join(" ");
}

export interface Series { name: string; points: readonly Point[] }

export const latest = (s: Series): number | undefined => s.points[s.points.length - 1]?.value;

/** What a screen reader says of the chart: its title and the latest value of each series. */
export function chartLabel(title: string, series: readonly Series[], format: (v: number) => string): string {
  const parts = series.map((s) => {
    const v = latest(s);
    return `${s.name} ${v === undefined ? "no data yet" : format(v)}`;
  });
  return `${title}: ${parts.join(", ")}`;
}
