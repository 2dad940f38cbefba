import { useQueryClient } from "@tanstack/react-query";
import { useCallback, useEffect, useState } from "react";
import { Link } from "react-router";
import { useLiveEvents, type TaskEvent } from "@/features/live";
import { useTask } from "@/features/tasks";

type Live = { status: TaskEvent["status"]; progress: number | null; message: string | null; error: string | null };

/**
 * A running analysis: progress bar and stage from live events, with the task API polled as
 * a fallback (the socket may be reconnecting). When it ends, the report is refetched.
 */
export function TaskProgress({ taskId }: { taskId: string }) {
  const task = useTask(taskId);
  const queryClient = useQueryClient();
  const [live, setLive] = useState<Live | null>(null);

  const onEvents = useCallback(
    (events: TaskEvent[]) => {
      const mine = events.filter((e) => e.data.task_id === taskId);
      const last = mine.at(-1);
      if (last === undefined) return;
      setLive((previous) => ({
        status: last.status,
        // Progress only moves forward, even when events of two attempts interleave.
        progress: Math.max(previous?.progress ?? 0, ...mine.map((e) => e.data.progress ?? 0)),
        message: last.data.progress_message ?? previous?.message ?? null,
        error: last.data.error_message,
      }));
    },
    [taskId],
  );
  useLiveEvents(onEvents);

  const detail = task.data;
  const status = live?.status ?? detail?.status ?? "pending";
  const progress = Math.max(live?.progress ?? 0, detail?.progress ?? 0);
  const message = live?.message ?? detail?.progress_message ?? null;
  const error = live?.error ?? detail?.error_message ?? null;
  const finished = status === "success" || status === "failed" || status === "cancelled";

  useEffect(() => {
    if (finished) void queryClient.invalidateQueries({ queryKey: ["analyses"] });
  }, [finished, queryClient]);

  if (status === "success") return null;
  if (status === "failed" || status === "cancelled") {
    return (
      <div className="card notice notice--error" role="alert">
        The analysis {status === "failed" ? "failed" : "was cancelled"}
        {error ? `: ${error}` : "."} <Link to={`/tasks/${encodeURIComponent(taskId)}`}>Task details</Link>
      </div>
    );
  }
  const percent = Math.round(progress * 100);
  return (
    <div className="card notice" data-testid="task-progress">
      <div className="notice__row">
        <span className="spinner" aria-hidden="true" />
        <span>
          {status === "pending" ? "Waiting for a worker…" : (message ?? "Working…")}{" "}
          <span className="muted small">{percent}%</span>{" "}
          <Link className="small" to={`/tasks/${encodeURIComponent(taskId)}`}>
            task
          </Link>
        </span>
      </div>
      <progress className="progress" max={100} value={percent} aria-label="Analysis progress" />
    </div>
  );
}
