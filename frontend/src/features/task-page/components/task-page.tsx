import { Link, useParams } from "react-router";
import { OperatorSignInLink, useCanOperate } from "@/features/auth";
import { CodeBlock } from "@/components/code-block";
import { CopyButton } from "@/components/copy-button";
import { MetaRow } from "@/components/meta-row";
import { TaskActionButton, useTask, type TaskDetail } from "@/features/tasks";
import { formatDateTime, formatDuration, formatJson } from "@/lib/format";
import { useDocumentTitle } from "@/lib/use-document-title";
import { useNow } from "@/lib/use-now";
import { buildTimeline, type Attempt } from "../timeline";

const UNFINISHED = new Set(["pending", "running"]);

function Timeline({ attempts, now }: { attempts: Attempt[]; now: number }) {
  const steps = buildTimeline(attempts, now);
  return (
    <ol className="timeline" aria-label="Timeline">
      {steps.map((s) => (
        <li key={s.key} className={`timeline__step timeline__step--${s.kind}`} data-testid="timeline-step">
          <span className="timeline__label">{s.label}</span>
          {s.durationMs !== null && <span className="timeline__duration"> {formatDuration(s.durationMs)}</span>}
          {s.at !== null && (
            <time className="muted small timeline__at" dateTime={s.at}>
              {" "}
              {formatDateTime(s.at)}
            </time>
          )}
        </li>
      ))}
    </ol>
  );
}

function Overview({ task }: { task: TaskDetail }) {
  const canOperate = useCanOperate();
  const retryable = task.status === "failed" || task.status === "cancelled";
  const action = retryable ? "retry" : UNFINISHED.has(task.status) ? "cancel" : null;
  return (
    <section className="card" aria-labelledby="task-overview">
      <header className="card__header">
        <h2 id="task-overview">
          <span className={`pill status--${task.status}`} data-testid="task-status">
            {task.status}
          </span>
        </h2>
        {action !== null &&
          (canOperate ? (
            <TaskActionButton key={task.status} taskId={task.task_id} action={action} />
          ) : (
            <OperatorSignInLink to={action} />
          ))}
      </header>
      <dl className="details__meta">
        <MetaRow label="Task id">
          <code className="break-anywhere">{task.task_id}</code> <CopyButton text={task.task_id} label="Copy id" />
        </MetaRow>
        <MetaRow label="Queue">{task.queue}</MetaRow>
        <MetaRow label="Worker">{task.worker}</MetaRow>
        <MetaRow label="Enqueued">{formatDateTime(task.created_at)}</MetaRow>
        <MetaRow label="Finished">{formatDateTime(task.completed_at)}</MetaRow>
        <MetaRow label="Duration">{formatDuration(task.duration_ms)}</MetaRow>
        <MetaRow label="Attempts">{task.attempts.length}</MetaRow>
        {task.progress_message && UNFINISHED.has(task.status) && (
          <MetaRow label="Progress">
            {task.progress_message}
            {task.progress !== null ? ` (${Math.round(task.progress * 100)}%)` : ""}
          </MetaRow>
        )}
      </dl>
      {task.error_message && (
        <p className="error-text" data-testid="task-error">
          {task.error_message}
        </p>
      )}
    </section>
  );
}

/**
 * `/tasks/:taskId`: one task, reloadable and shareable. Its attempts as a timeline, its
 * params, result and tracebacks (each copyable), and Retry/Cancel for operators. Polled
 * while the task is unfinished.
 */
export function TaskPage() {
  const { taskId = "" } = useParams();
  const task = useTask(taskId);
  const data = task.data;
  const now = useNow(data ? UNFINISHED.has(data.status) : false);
  useDocumentTitle(data ? `${data.task_name} ${data.status}` : "Task");

  if (data === undefined || data === null) {
    return (
      <main className="page page--narrow">
        <h1>Task</h1>
        <p className="muted">
          <code className="break-anywhere">{taskId}</code>
        </p>
        {task.error !== null ? (
          <div className="placeholder placeholder--error" role="alert">
            <p>{task.error.message}</p>
            <button type="button" className="button" onClick={() => void task.refetch()}>
              Retry
            </button>
          </div>
        ) : data === null ? (
          <div className="placeholder" role="status" data-testid="task-not-logged">
            <p>
              <span className="spinner" aria-hidden="true" /> No log row for this task yet: watching for it.
            </p>
            <p className="muted small">
              A task just queued appears within seconds, once its first row is written. An id that was mistyped, or
              whose rows retention removed, never will.
            </p>
          </div>
        ) : (
          <p className="placeholder" role="status">
            Loading task…
          </p>
        )}
        <p>
          <Link to="/monitoring">Search the history</Link>
        </p>
      </main>
    );
  }

  const failedAttempts = data.attempts.filter((a) => a.error_traceback);
  return (
    <main className="page">
      <div className="page__header">
        <h1>
          <code>{data.task_name}</code>
        </h1>
        <Link className="small" to={`/monitoring?task_name=${encodeURIComponent(data.task_name)}`}>
          all {data.task_name} in history
        </Link>
      </div>
      <Overview task={data} />
      <section className="card" aria-labelledby="task-timeline">
        <h2 id="task-timeline">Timeline</h2>
        <Timeline attempts={data.attempts} now={now} />
      </section>
      <section className="card details" aria-label="Inputs and outputs">
        <CodeBlock title="Params" text={formatJson(data.params)} testId="task-params" />
        {data.result !== null && <CodeBlock title="Result" text={formatJson(data.result)} testId="task-result" />}
        {failedAttempts.map((a) => (
          <CodeBlock
            key={a.attempt}
            title={failedAttempts.length > 1 || a.attempt > 1 ? `Traceback of attempt ${a.attempt}` : "Traceback"}
            text={a.error_traceback ?? ""}
            testId="traceback"
            error
          />
        ))}
      </section>
    </main>
  );
}
