import { useQueryClient } from "@tanstack/react-query";
import { useCallback, useEffect, useState } from "react";
import { Link } from "react-router";
import { OperatorSignInLink } from "@/features/auth";
import { useLiveEvents, type TaskEvent } from "@/features/live";
import { TaskActionButton, useTask } from "@/features/tasks";
import { formatCountdown } from "@/lib/format";
import { supersedes, type TaskStatus } from "@/lib/task-status";
import { useNow } from "@/lib/use-now";
import { useRetryAnalysis } from "../api/analyses";
import { analysesKeys } from "../api/keys";

type Live = {
  attempt: number;
  status: TaskStatus;
  progress: number | null;
  message: string | null;
  error: string | null;
};

export type TaskProgressProps = {
  taskId: string;
  taskName: string;
  /** The analysis still names this task as its run: a failed attempt is being retried. */
  stillRunning: boolean;
  attemptsAllowed: number;
  canOperate: boolean;
  onRetried: (taskId: string) => void;
};

/**
 * A running analysis: progress bar and stage from live events, with the task API polled as
 * a fallback (the socket may be reconnecting). A failed attempt that will be retried says so,
 * counting down to the next attempt (the task's `retry_at`); "failed" is shown only when
 * final, with Retry. When an attempt ends, the report is refetched
 * (which never starts a new run by itself: the server remembers the failure).
 */
export function TaskProgress({
  taskId,
  taskName,
  stillRunning,
  attemptsAllowed,
  canOperate,
  onRetried,
}: TaskProgressProps) {
  const task = useTask(taskId);
  const queryClient = useQueryClient();
  const retry = useRetryAnalysis();
  const [live, setLive] = useState<Live | null>(null);

  const onEvents = useCallback(
    (events: TaskEvent[]) => {
      const mine = events.filter((e) => e.data.task_id === taskId);
      if (mine.length === 0) return;
      setLive((previous) => {
        let next = previous;
        for (const e of mine) {
          // A late `pending` (or any stale event) does not move the state back.
          if (!supersedes({ attempt: e.data.attempt, status: e.status }, next)) continue;
          next = {
            attempt: e.data.attempt,
            status: e.status,
            // Progress only moves forward, even when events of two attempts interleave.
            progress: Math.max(next?.progress ?? 0, e.data.progress ?? 0),
            message: e.data.progress_message ?? next?.message ?? null,
            error: e.data.error_message ?? (e.status === "failed" ? null : (next?.error ?? null)),
          };
        }
        return next;
      });
    },
    [taskId],
  );
  useLiveEvents(onEvents);

  const detail = task.data;
  // The polled task and the live events each may be ahead (the socket reconnecting, or the
  // poll not yet due): the state is whichever is further along.
  const polled = detail && { attempt: detail.attempts.at(-1)?.attempt ?? 1, status: detail.status };
  const useLive = live !== null && supersedes(live, polled);
  const status = useLive ? live.status : (polled?.status ?? "pending");
  const attempt = useLive ? live.attempt : (polled?.attempt ?? 1);
  const progress = Math.max(live?.progress ?? 0, detail?.progress ?? 0);
  const message = live?.message ?? detail?.progress_message ?? null;
  const failedAttempts = (detail?.attempts ?? []).filter((a) => a.status === "failed");
  const lastFailure = failedAttempts.at(-1);
  const error = (useLive ? live.error : null) ?? detail?.error_message ?? lastFailure?.error_message ?? null;
  const finished = status === "success" || status === "failed" || status === "cancelled";
  const retrying = status === "failed" && stillRunning && attempt < attemptsAllowed;
  // A later attempt waiting after a failed one, or the failed one the retry follows.
  const awaitingRetry = retrying || (attempt > 1 && status === "pending");
  const retryAt = detail?.retry_at ? Date.parse(detail.retry_at) : null;
  const now = useNow(awaitingRetry && retryAt !== null);
  const refetchTask = task.refetch;

  useEffect(() => {
    if (finished) void queryClient.invalidateQueries({ queryKey: analysesKeys.all() });
  }, [finished, attempt, queryClient]);
  useEffect(() => {
    // The retry's time is in the task, not in the live events: ask until it is known (the
    // poll stops at a failed attempt, and the next one's row may land just after it).
    if (!awaitingRetry || retryAt !== null) return;
    void refetchTask();
    const timer = setInterval(() => void refetchTask(), 1_000);
    return () => clearInterval(timer);
  }, [awaitingRetry, retryAt, attempt, refetchTask]);

  const details = (
    <Link className="small" to={`/tasks/${encodeURIComponent(taskId)}`} title={`Task ${taskId} (${taskName})`}>
      Task details
    </Link>
  );

  if (status === "success") return null;
  if ((status === "failed" || status === "cancelled") && !retrying) {
    return (
      <div className="card notice notice--error" role="alert" data-testid="task-failed">
        <div className="notice__row">
          <span>
            The analysis {status === "failed" ? "failed" : "was cancelled"}
            {status === "failed" && attempt > 1 ? ` after ${attempt} attempts` : ""}
            {error ? `: ${error}` : "."}
          </span>
        </div>
        <div className="notice__row">
          {canOperate ? (
            <button
              type="button"
              className="button button--small button--primary"
              disabled={retry.isPending}
              onClick={() => retry.mutate(taskId, { onSuccess: (sent) => onRetried(sent.task_id) })}
            >
              {retry.isPending ? "Retrying…" : "Retry"}
            </button>
          ) : (
            <OperatorSignInLink to="retry" />
          )}
          {details}
          {retry.isError && (
            <span className="error-text small" role="alert">
              {retry.error.message}
            </span>
          )}
        </div>
      </div>
    );
  }
  const percent = Math.round(progress * 100);
  const failedAttempt = retrying ? attempt : attempt - 1;
  const secondsLeft = retryAt === null ? null : (retryAt - now) / 1000;
  const when = secondsLeft === null ? "" : secondsLeft > 0 ? ` in ${formatCountdown(secondsLeft)}` : " now";
  const retryNote = awaitingRetry
    ? `Attempt ${failedAttempt} failed${error ? ` (${error})` : ""}, retrying${when} (${failedAttempt + 1} of ${attemptsAllowed})${secondsLeft !== null && secondsLeft > 0 ? "" : "…"}`
    : null;
  return (
    <div className="card notice" data-testid="task-progress">
      <div className="notice__row">
        <span className="spinner" aria-hidden="true" />
        <span role="status">
          {retryNote ?? (status === "pending" ? "Waiting for a worker…" : (message ?? "Working…"))}{" "}
          {retryNote === null && <span className="muted small">{percent}%</span>}
        </span>
      </div>
      <progress className="progress" max={100} value={percent} aria-label="Analysis progress" />
      <div className="notice__row">
        {canOperate ? <TaskActionButton taskId={taskId} action="cancel" /> : <OperatorSignInLink to="cancel" />}
        {details}
      </div>
    </div>
  );
}
