import { lazy, Suspense, type ComponentProps } from "react";
import { ErrorBoundary } from "@/components/error-boundary";

// chart.js lives in its own chunk, so the dashboard's first paint does not wait for it; it is
// fetched as soon as the browser is idle, so a chart drawn later (say while the API restarts)
// does not depend on the server being up at that moment.
const loadLine = () => import("./line-chart");
const loadBar = () => import("./bar-chart");
const LazyLine = lazy(loadLine);
const LazyBar = lazy(loadBar);

export function preloadCharts(): void {
  const load = () => void Promise.all([loadLine(), loadBar()]).catch(() => undefined);
  if ("requestIdleCallback" in window) window.requestIdleCallback(load, { timeout: 2_000 });
  else setTimeout(load, 500);
}

export type { Series } from "./line-chart";

/** A fixed-height box, so the page does not jump while the chart loads. */
function ChartFrame({ title, children, height = 220 }: { title: string; children: React.ReactNode; height?: number }) {
  return (
    <figure className="chart" aria-label={title}>
      <figcaption className="chart__title">{title}</figcaption>
      <div className="chart__canvas" style={{ height }}>
        <ErrorBoundary
          fallback={() => (
            <p className="muted small" role="alert">
              This chart could not be loaded; reload the page to try again.
            </p>
          )}
        >
          <Suspense fallback={<p className="muted small">Loading chart…</p>}>{children}</Suspense>
        </ErrorBoundary>
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
