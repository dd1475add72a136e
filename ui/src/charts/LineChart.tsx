// A small line chart in SVG for the dashboard: one or more series over a time window ending
// now, the first drawn thicker (the cluster's total). Accessible: role="img" with a title and a
// description, and an aria-label that says the latest value of each series.
import { useId } from "react";
import "./chart.css";
import { chartLabel, latest, linePath, niceMax, type Series } from "./line-path.ts";

export type { Series };


interface Props {
  title: string;
  series: readonly Series[];
  format(value: number): string;
  nowMs: number;
  windowMs: number;
  testId?: string;
}

const box = { width: 230, height: 70 };
const pad = { left: 40, right: 8, top: 8, bottom: 18 };


export function LineChart({ title, series, format, nowMs, windowMs, testId }: Props) {
  const id = useId();
  const yMax = niceMax(Math.max(0, ...series.flatMap((s) => s.points.map((p) => p.value))));
  const fromMs = nowMs - windowMs;
  const label = chartLabel(title, series, format);
  const minutes = Math.round(windowMs / 60_000);
  return (
    <figure className="pf-v6-u-m-0" data-testid={testId}>
      <svg className="trivet-chart" viewBox={`0 0 ${box.width + pad.left + pad.right} ${box.height + pad.top + pad.bottom}`}
        role="img" aria-label={label} aria-describedby={`${id}-d`}>
        <title id={`${id}-t`}>{label}</title>
        <desc id={`${id}-d`}>{`${title} over the last ${minutes} minutes, sampled by this browser while the dashboard is open; axis from 0 to ${format(yMax)}.`}</desc>
        <g transform={`translate(${pad.left} ${pad.top})`}>
          <line className="grid" x1={0} y1={0} x2={box.width} y2={0} />
          <line className="grid" x1={0} y1={box.height / 2} x2={box.width} y2={box.height / 2} />
          <line className="grid" x1={0} y1={box.height} x2={box.width} y2={box.height} />
          <text className="axis-label" x={-4} y={4} textAnchor="end">{format(yMax)}</text>
          <text className="axis-label" x={-4} y={box.height + 4} textAnchor="end">0</text>
          <text className="axis-label" x={0} y={box.height + 15}>−{minutes} min</text>
          <text className="axis-label" x={box.width} y={box.height + 15} textAnchor="end">now</text>
          {series.map((s, i) => (
            <path key={s.name} className={`line trivet-series-${i % 6}${i === 0 ? " total" : ""}`} d={linePath(s.points, box, fromMs, nowMs, yMax)} data-series={s.name} />
          ))}
        </g>
      </svg>
      <ul className="trivet-legend" aria-hidden="true">
        {series.map((s, i) => (
          <li key={s.name}>
            <span className={`trivet-legend-swatch trivet-series-${i % 6}`} />{s.name}: {latest(s) === undefined ? "–" : format(latest(s)!)}
          </li>
        ))}
      </ul>
    </figure>
  );
}
