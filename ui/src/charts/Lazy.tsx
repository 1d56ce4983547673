// The chart components behind React.lazy, so uPlot loads with the first chart drawn.
import { lazy, Suspense, type ComponentProps } from "react";

const Metric = lazy(() => import("./MetricChart").then((m) => ({ default: m.MetricChart })));
const Scatter = lazy(() => import("./MetricChart").then((m) => ({ default: m.ScatterChart })));

export function LazyMetricChart(props: ComponentProps<typeof Metric>) {
  return (
    <Suspense fallback={<div className="chart placeholder" />}>
      <Metric {...props} />
    </Suspense>
  );
}

export function LazyScatterChart(props: ComponentProps<typeof Scatter>) {
  return (
    <Suspense fallback={<div className="chart placeholder" />}>
      <Scatter {...props} />
    </Suspense>
  );
}
