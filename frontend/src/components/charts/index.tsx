import { lazy, Suspense, type ComponentProps } from "react";

// chart.js is loaded on first use, in its own chunk: the dashboard's first paint does not wait for it.
const LazyLine = lazy(() => import("./line-chart"));
const LazyBar = lazy(() => import("./bar-chart"));

export type { Series } from "./line-chart";

/** A fixed-height box, so the page does not jump while the chart loads. */
function ChartFrame({ title, children, height = 220 }: { title: string; children: React.ReactNode; height?: number }) {
  return (
    <figure className="chart" aria-label={title}>
      <figcaption className="chart__title">{title}</figcaption>
      <div className="chart__canvas" style={{ height }}>
        <Suspense fallback={<p className="muted small">Loading chart…</p>}>{children}</Suspense>
      </div>
    </figure>
  );
}

export function LineChart({
  title,
  height,
  ...props
}: ComponentProps<typeof LazyLine> & { title: string; height?: number }) {
  return (
    <ChartFrame title={title} height={height}>
      <LazyLine {...props} />
    </ChartFrame>
  );
}

export function BarChart({
  title,
  height,
  ...props
}: ComponentProps<typeof LazyBar> & { title: string; height?: number }) {
  return (
    <ChartFrame title={title} height={height}>
      <LazyBar {...props} />
    </ChartFrame>
  );
}
