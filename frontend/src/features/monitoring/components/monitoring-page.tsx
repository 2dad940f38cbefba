import { useDocumentTitle } from "@/lib/use-document-title";
import { useSearchParams } from "react-router";
import { HistoryTable, useTaskNames } from "@/features/history";
import { LiveFeed } from "@/features/live";
import { ApiError } from "@/lib/api-client";
import { useMetrics } from "../api/get-metrics";
import { MetricsCards } from "./metrics-cards";
import { ThroughputCharts } from "./throughput-charts";

const TITLE = "Background Task Monitoring";
export const TIME_WINDOWS = [
  { hours: 1, label: "Last hour" },
  { hours: 24, label: "Last 24 hours" },
  { hours: 168, label: "Last 7 days" },
  { hours: 720, label: "Last 30 days" },
] as const;

function readWindow(params: URLSearchParams): number {
  const hours = Number(params.get("window"));
  return TIME_WINDOWS.some((w) => w.hours === hours) ? hours : 24;
}

function HealthCards({ timeWindow }: { timeWindow: number }) {
  const metrics = useMetrics(timeWindow);
  const { data, error } = metrics;
  if (data === undefined) {
    if (error === null) {
      return (
        <p role="status" className="placeholder">
          Loading metrics…
        </p>
      );
    }
    return (
      <div role="alert" className="card placeholder placeholder--error">
        <p>
          Could not load metrics{error instanceof ApiError ? ` (HTTP ${error.status})` : ""}: {error.message}
        </p>
        <button type="button" className="button" onClick={() => void metrics.refetch()}>
          Retry
        </button>
      </div>
    );
  }
  return (
    <>
      <p className="muted small" aria-live="polite">
        Updated {new Date(data.generated_at).toLocaleTimeString("en-GB", { hour12: false })}
        {metrics.isFetching ? " · refreshing…" : ""}
        {error !== null && !metrics.isFetching ? " · refresh failed, showing earlier data" : ""}
      </p>
      {data.metrics.length === 0 ? (
        <div className="card placeholder">
          <p>
            No task executions in the last {data.time_window_hours === 1 ? "hour" : `${data.time_window_hours} hours`}.
          </p>
          <p className="muted small">
            Queue demo tasks with <code>./dev demo 50</code> (or <code>tasklens demo --count 50</code>); a worker must
            be running for them to finish: <code>./dev tasklens worker</code>.
          </p>
        </div>
      ) : (
        <MetricsCards metrics={data.metrics} />
      )}
    </>
  );
}

export function MonitoringPage() {
  const [params, setParams] = useSearchParams();
  const timeWindow = readWindow(params);
  const taskNames = useTaskNames(); // the live feed's filter offers every name ever logged

  useDocumentTitle(TITLE);

  function setWindow(hours: number) {
    const next = new URLSearchParams(params);
    if (hours === 24) next.delete("window");
    else next.set("window", String(hours));
    setParams(next);
  }

  return (
    <main className="page">
      <div className="page__header">
        <h1>{TITLE}</h1>
        <label className="inline-field">
          <span className="muted">Time window</span>
          <select value={timeWindow} onChange={(e) => setWindow(Number(e.target.value))}>
            {TIME_WINDOWS.map((w) => (
              <option key={w.hours} value={w.hours}>
                {w.label}
              </option>
            ))}
          </select>
        </label>
      </div>
      <HealthCards timeWindow={timeWindow} />
      <div className="dashboard-grid">
        <ThroughputCharts timeWindow={timeWindow} />
        <LiveFeed taskNames={taskNames.data} />
      </div>
      <HistoryTable />
    </main>
  );
}
