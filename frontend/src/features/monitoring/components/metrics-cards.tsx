import type { TaskMetricsItem } from "../api/get-metrics";
import { formatCount, formatCountOf, formatDuration, formatRate } from "@/lib/format";

const STATES = ["pending", "running", "success", "failed", "cancelled"] as const;

function rateTone(rate: number | null): string {
  if (rate === null) return "";
  if (rate >= 0.95) return "tone-good";
  if (rate >= 0.8) return "tone-warn";
  return "tone-bad";
}

/** A task name the log knows with no run in the window: its card stays, greyed, with zeros. */
export function isIdle(item: TaskMetricsItem): boolean {
  return item.total_executions === 0;
}

export function MetricsCard({ item }: { item: TaskMetricsItem }) {
  const headingId = `task-${item.task_name.replace(/[^a-zA-Z0-9_-]/g, "-")}`;
  const idle = isIdle(item);
  return (
    <article
      className={`card metrics-card${idle ? " metrics-card--idle" : ""}`}
      aria-labelledby={headingId}
      data-testid="metrics-card"
      data-idle={idle || undefined}
    >
      <header className="metrics-card__header">
        <h2 id={headingId} className="metrics-card__title" title={item.task_name}>
          {item.task_name}
        </h2>
        <span className="muted" title={idle ? "No run in the selected window" : undefined}>
          {idle ? "idle" : formatCountOf(item.total_executions, "run")}
        </span>
      </header>
      <dl className="metrics-card__states">
        {STATES.map((state) => (
          <div key={state} className={`stat stat--${state}`}>
            <dt>{state}</dt>
            <dd>{formatCount(item[state])}</dd>
          </div>
        ))}
      </dl>
      <dl className="metrics-card__timing">
        <div className="stat">
          <dt>avg duration</dt>
          <dd>{formatDuration(item.avg_duration_ms)}</dd>
        </div>
        <div className="stat">
          <dt>p95 duration</dt>
          <dd>{formatDuration(item.p95_duration_ms)}</dd>
        </div>
        <div className="stat">
          <dt>success rate</dt>
          <dd className={rateTone(item.success_rate)}>{formatRate(item.success_rate)}</dd>
        </div>
      </dl>
    </article>
  );
}

/**
 * One card per task name the log knows, idle ones included (the API lists them with zeros).
 * Presentational: give it the `metrics` array of a MetricsResponse.
 */
export function MetricsCards({ metrics }: { metrics: TaskMetricsItem[] }) {
  return (
    <section className="metrics-grid" aria-label="Task metrics">
      {metrics.map((item) => (
        <MetricsCard key={item.task_name} item={item} />
      ))}
    </section>
  );
}
