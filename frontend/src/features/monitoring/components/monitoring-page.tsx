import { useEffect, useState } from "react";
import { ApiError } from "@/lib/api-client";
import { useMetrics } from "../api/get-metrics";
import { MetricsCards } from "./metrics-cards";

const TITLE = "Background Task Monitoring";
export const TIME_WINDOWS = [
  { hours: 1, label: "Last hour" },
  { hours: 6, label: "Last 6 hours" },
  { hours: 24, label: "Last 24 hours" },
  { hours: 168, label: "Last 7 days" },
  { hours: 720, label: "Last 30 days" },
] as const;

export function MonitoringPage() {
  const [timeWindow, setTimeWindow] = useState(24);
  const metrics = useMetrics(timeWindow);

  useEffect(() => {
    document.title = `${TITLE} · TaskLens`;
  }, []);

  const { data, error } = metrics;
  let body;
  if (data !== undefined) {
    body =
      data.metrics.length === 0 ? (
        <p className="card placeholder">No task executions in the last {data.time_window_hours} hours.</p>
      ) : (
        <MetricsCards metrics={data.metrics} />
      );
  } else if (error !== null) {
    body = (
      <div role="alert" className="card placeholder placeholder--error">
        <p>
          Could not load metrics{error instanceof ApiError ? ` (HTTP ${error.status})` : ""}: {error.message}
        </p>
        <button type="button" className="button" onClick={() => void metrics.refetch()}>
          Retry
        </button>
      </div>
    );
  } else {
    body = (
      <p role="status" className="placeholder">
        Loading metrics…
      </p>
    );
  }

  return (
    <main className="page">
      <div className="page__header">
        <h1>{TITLE}</h1>
        <label className="inline-field">
          <span className="muted">Time window</span>
          <select value={timeWindow} onChange={(e) => setTimeWindow(Number(e.target.value))}>
            {TIME_WINDOWS.map((w) => (
              <option key={w.hours} value={w.hours}>
                {w.label}
              </option>
            ))}
          </select>
        </label>
      </div>
      {data !== undefined && (
        <p className="muted small" aria-live="polite">
          Updated {new Date(data.generated_at).toLocaleTimeString()}
          {metrics.isFetching ? " · refreshing…" : ""}
          {error !== null && !metrics.isFetching ? " · refresh failed, showing earlier data" : ""}
        </p>
      )}
      {body}
    </main>
  );
}
