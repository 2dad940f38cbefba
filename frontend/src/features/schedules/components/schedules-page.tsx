import { Link } from "react-router";
import { LoadState } from "@/components/load-state";
import { type ScheduleItem, useSchedules } from "../api/schedules";
import { formatAge, formatDateTime, formatRelative } from "@/lib/format";
import { useDocumentTitle } from "@/lib/use-document-title";

const EXAMPLE = `{"schedules": [
  {"kind": "github_user", "subject": "octocat", "cron": "0 6 * * *"},
  {"kind": "repository", "subject": "https://github.com/org/repo.git",
   "period": "1_month", "interval_seconds": 3600}
]}`;

/** No schedules file: how to add one (the README's "Scheduled refreshes" says the rest). */
function NoSchedulesFile() {
  return (
    <div className="card placeholder" data-testid="schedules-empty">
      <p>No schedules file is configured.</p>
      <p className="muted small">
        Write the analyses to refresh into a JSON file, point <code>TASKLENS_SCHEDULES_FILE</code> at it for the API and
        run <code>tasklens scheduler</code> beside your workers. See <strong>Scheduled refreshes</strong> in the README.
      </p>
      <pre className="code">{EXAMPLE}</pre>
    </div>
  );
}

function timing(item: ScheduleItem): string {
  if (item.cron !== null) return `cron ${item.cron} (UTC)`;
  return `every ${formatAge(item.interval_seconds ?? 0)}`;
}

function LastRun({ run }: { run: ScheduleItem["last_run"] }) {
  if (run === null) return <span className="muted">not run yet</span>;
  return (
    <>
      <Link to={`/tasks/${encodeURIComponent(run.task_id)}`} title={run.task_name}>
        <code>{run.task_id.slice(0, 8)}</code>
      </Link>{" "}
      <span className={`pill status--${run.status}`} data-testid="last-status">
        {run.status}
      </span>{" "}
      <span className="muted small" title={formatDateTime(run.at)}>
        {formatRelative(run.at)}
      </span>
    </>
  );
}

/** Every entry of the schedules file: what it refreshes, when next, and how its last run went. */
export function SchedulesTable({ schedules }: { schedules: ScheduleItem[] }) {
  if (schedules.length === 0) {
    return <p className="muted small">The schedules file has no entries.</p>;
  }
  return (
    <div className="table-scroll">
      <table className="table">
        <thead>
          <tr>
            <th scope="col">Analysis</th>
            <th scope="col">When</th>
            <th scope="col">Next run</th>
            <th scope="col">Last run</th>
          </tr>
        </thead>
        <tbody>
          {schedules.map((item) => (
            <tr key={item.schedule_id} data-testid="schedule-row">
              <td>
                {item.kind} <code>{item.subject}</code>
                {item.period !== null && <span className="muted small"> · {item.period}</span>}
              </td>
              <td>{timing(item)}</td>
              <td title={item.next_run_at ?? undefined}>
                {item.next_run_at === null ? "never" : formatDateTime(item.next_run_at)}
              </td>
              <td>
                <LastRun run={item.last_run} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Schedules() {
  const { data, error, refetch } = useSchedules();
  if (data === undefined) return <LoadState what="schedules" error={error} onRetry={() => void refetch()} />;
  if (!data.configured) return <NoSchedulesFile />;
  return (
    <section className="card" aria-labelledby="schedules-title">
      <h2 id="schedules-title">Scheduled refreshes</h2>
      {data.error !== null && (
        <p className="error-text small" role="alert">
          The schedules file cannot be read now; schedulers keep its last good version: {data.error}
        </p>
      )}
      <SchedulesTable schedules={data.schedules} />
    </section>
  );
}

export function SchedulesPage() {
  useDocumentTitle("Schedules");
  return (
    <main className="page">
      <div className="page__header">
        <h1>Schedules</h1>
      </div>
      <Schedules />
    </main>
  );
}
