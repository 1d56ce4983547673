// uPlot charts, loaded on demand (React.lazy): the chart code stays out of the first bundle.
import { useEffect, useRef } from "react";
import uPlot, { type AlignedData, type Options } from "uplot";
import "uplot/dist/uPlot.min.css";

export interface Series {
  label: string;
  xs: number[];
  ys: (number | null)[];
}

export const PALETTE = [
  "#2563eb",
  "#dc2626",
  "#16a34a",
  "#d97706",
  "#7c3aed",
  "#0891b2",
  "#db2777",
  "#4b5563",
  "#65a30d",
  "#9333ea",
];

/** TensorBoard's debiased exponential moving average; gaps stay gaps. */
export function smooth(ys: (number | null)[], weight: number): (number | null)[] {
  if (weight <= 0) return ys;
  let last = 0;
  let count = 0;
  return ys.map((y) => {
    if (y === null || !Number.isFinite(y)) return y;
    last = last * weight + (1 - weight) * y;
    count += 1;
    return last / (1 - weight ** count);
  });
}

/** The x range to draw: the data's own, or one unit either side of a single instant or step. */
export function narrowRange(min: number | null, max: number | null, pad: number): [number, number] {
  if (min === null || max === null || !Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
  if (max - min < pad) {
    const mid = (min + max) / 2;
    return [mid - pad, mid + pad];
  }
  return [min, max];
}

function drawn(root: HTMLElement, started: number) {
  // Tests and the benchmark read how long the chart took from data prep to paint.
  root.dataset.drawn = "true";
  root.dataset.drawMs = (performance.now() - started).toFixed(1);
}

export function MetricChart(props: {
  series: Series[];
  x: "step" | "time";
  log?: boolean;
  smoothing?: number;
  height?: number;
  title?: string;
}) {
  const box = useRef<HTMLDivElement>(null);
  const { series, x, log = false, smoothing = 0, height = 260, title } = props;

  useEffect(() => {
    const root = box.current;
    if (!root) return;
    const started = performance.now();
    root.dataset.drawn = "false";
    const positive = (ys: (number | null)[]) =>
      log ? ys.map((y) => (y !== null && y > 0 ? y : null)) : ys;
    const parts: AlignedData[] = series.map((s) => [
      x === "time" ? s.xs.map((t) => t / 1000) : s.xs,
      positive(smooth(s.ys, smoothing)),
    ]);
    const data: AlignedData = parts.length === 1 ? parts[0] : uPlot.join(parts);
    const options: Options = {
      width: root.clientWidth || 600,
      height,
      title,
      scales: {
        // uPlot widens a range of zero width by orders of magnitude: a series logged
        // within one instant would stretch across years. Keep such ranges a second wide.
        x: { time: x === "time", range: (_u, min, max) => narrowRange(min, max, 1) },
        y: log ? { distr: 3 } : {},
      },
      axes: [{ label: x === "time" ? undefined : "step" }, { size: 60 }],
      series: [
        { label: x === "time" ? "time" : "step" },
        ...series.map((s, i) => ({
          label: s.label,
          stroke: PALETTE[i % PALETTE.length],
          width: 1.5,
          spanGaps: true,
          points: { show: (data[0]?.length ?? 0) < 60 },
        })),
      ],
      legend: { live: true },
      hooks: { draw: [() => drawn(root, started)] },
    };
    const plot = new uPlot(options, data, root);
    const resize = new ResizeObserver(() => plot.setSize({ width: root.clientWidth, height }));
    resize.observe(root);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [series, x, log, smoothing, height, title]);

  return <div className="chart" ref={box} data-testid="metric-chart" data-series={series.length} />;
}

export interface Point {
  label: string;
  x: number;
  y: number;
}

/** Runs as points: a param (or its category's index) against a metric. */
export function ScatterChart(props: { points: Point[]; xLabel: string; yLabel: string; categories?: string[] }) {
  const box = useRef<HTMLDivElement>(null);
  const { points, xLabel, yLabel, categories } = props;
  useEffect(() => {
    const root = box.current;
    if (!root) return;
    const started = performance.now();
    const sorted = [...points].sort((a, b) => a.x - b.x);
    const data: AlignedData = [sorted.map((p) => p.x), sorted.map((p) => p.y)];
    const plot = new uPlot(
      {
        width: root.clientWidth || 600,
        height: 300,
        scales: {
          // Half a step either side of the categories: the first and last labels stay whole.
          x: categories
            ? { time: false, range: () => [-0.5, categories.length - 0.5] }
            : { time: false },
        },
        axes: [
          {
            label: xLabel,
            values: categories ? (_u, ticks) => ticks.map((t) => categories[t] ?? "") : undefined,
            splits: categories ? () => categories.map((_c, i) => i) : undefined,
          },
          { label: yLabel, size: 60 },
        ],
        series: [
          { label: xLabel, value: (_u, v) => (categories ? (categories[v] ?? "") : String(v)) },
          {
            label: yLabel,
            stroke: PALETTE[0],
            fill: PALETTE[0],
            paths: () => null,
            points: { show: true, size: 9, fill: PALETTE[0] },
          },
        ],
        hooks: { draw: [() => drawn(root, started)] },
      },
      data,
      root,
    );
    return () => plot.destroy();
  }, [points, xLabel, yLabel, categories]);
  return <div className="chart" ref={box} data-testid="scatter-chart" />;
}
