import { useQueryClient } from "@tanstack/react-query";
import { useCallback, useEffect, useState } from "react";
import { useLiveEvents, type TaskEvent } from "@/features/live";
import { useTask } from "@/features/tasks";
import { supersedes, type TaskStatus } from "@/lib/task-status";
import { analysesKeys } from "../api/keys";

type Live = {
  attempt: number;
  status: TaskStatus;
  progress: number | null;
  message: string | null;
  error: string | null;
};

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
            error: e.data.error_message,
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
  const status = live !== null && supersedes(live, polled) ? live.status : (polled?.status ?? "pending");
  const progress = Math.max(live?.progress ?? 0, detail?.progress ?? 0);
  const message = live?.message ?? detail?.progress_message ?? null;
  const error = live?.error ?? detail?.error_message ?? null;
  const finished = status === "success" || status === "failed" || status === "cancelled";

  useEffect(() => {
    if (finished) void queryClient.invalidateQueries({ queryKey: analysesKeys.all() });
  }, [finished, queryClient]);

  if (status === "success") return null;
  if (status === "failed" || status === "cancelled") {
    return (
      <div className="card notice notice--error" role="alert">
        The analysis {status === "failed" ? "failed" : "was cancelled"}
        {error ? `: ${error}` : "."}
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
          <span className="muted small">{percent}%</span>
        </span>
      </div>
      <progress className="progress" max={100} value={percent} aria-label="Analysis progress" />
    </div>
  );
}
