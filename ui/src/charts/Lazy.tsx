// The chart components, loaded with the first chart drawn: uPlot stays out of the
// views' own chunks. Call preloadCharts() as soon as a page knows it will draw one.
import type { ComponentProps } from "react";
import { lazyComponent } from "../lazy";
import type { MetricChart, ScatterChart } from "./MetricChart";

const placeholder = () => <div className="chart placeholder" />;

export const LazyMetricChart = lazyComponent<ComponentProps<typeof MetricChart>>(
  () => import("./MetricChart").then((m) => m.MetricChart),
  placeholder,
);

export const LazyScatterChart = lazyComponent<ComponentProps<typeof ScatterChart>>(
  () => import("./MetricChart").then((m) => m.ScatterChart),
  placeholder,
);

export function preloadCharts(): void {
  void LazyMetricChart.preload();
  void LazyScatterChart.preload();
}
