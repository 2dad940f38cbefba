import { LineChart } from "@/components/charts";
import { formatClock } from "@/lib/format";
import { useTimeseries, type Timeseries } from "../api/get-timeseries";

// Built once: `toLocaleString` builds a formatter per call, for each of a chart's labels.
const DAY_LABEL = new Intl.DateTimeFormat("en-GB", { month: "short", day: "numeric" });
const HOUR_LABEL = new Intl.DateTimeFormat("en-GB", {
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  hour12: false,
});
const MINUTE_LABEL = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", hour12: false });

function bucketLabel(iso: string, bucketSeconds: number): string {
  const date = new Date(iso);
  if (bucketSeconds >= 86_400) return DAY_LABEL.format(date);
  return (bucketSeconds >= 3_600 ? HOUR_LABEL : MINUTE_LABEL).format(date);
}

type Bucket = Timeseries["series"][number];

/** Finished means an outcome: a queued or running task has none yet, so it is not counted. */
export function finished(bucket: Bucket): number {
  return bucket.success + bucket.failed + bucket.cancelled;
}

/** Executions per bucket by outcome, and the p95 duration, over the selected window. */
export function ThroughputCharts({ timeWindow }: { timeWindow: number }) {
  const { data, error, isFetching } = useTimeseries(timeWindow);
  if (data === undefined) {
    return (
      <p className={error ? "card placeholder placeholder--error" : "placeholder"} role={error ? "alert" : "status"}>
        {error ? `Could not load charts: ${error.message}` : "Loading charts…"}
      </p>
    );
  }
  if (data.series.every((b) => b.total === 0)) {
    return (
      <p className="card placeholder">
        No executions to chart in this window. Queue some with <code>./dev demo 50</code> and start a worker.
      </p>
    );
  }
  const labels = data.series.map((b) => bucketLabel(b.bucket_start, data.bucket_seconds));
  return (
    <section className="charts" aria-label="Charts">
      <p className="muted small" data-testid="charts-drawn-at">
        Charts drawn at {formatClock(data.generated_at)}
        {isFetching ? " · refreshing…" : ""}
        {error !== null && !isFetching ? " · refresh failed, showing earlier data" : ""}
      </p>
      <div className="card">
        <LineChart
          title="Throughput and failures"
          labels={labels}
          series={[
            { label: "finished", values: data.series.map(finished), color: "--accent", fill: true },
            { label: "failed", values: data.series.map((b) => b.failed), color: "--bad" },
            { label: "queued or running", values: data.series.map((b) => b.pending + b.running), color: "--muted" },
          ]}
        />
      </div>
      <div className="card">
        <LineChart
          title="Duration p95"
          yTitle="ms"
          labels={labels}
          series={[{ label: "p95 (ms)", values: data.series.map((b) => b.p95_duration_ms), color: "--warn" }]}
        />
      </div>
    </section>
  );
}
