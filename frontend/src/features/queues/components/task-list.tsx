import { Link } from "react-router";
import { useQueryClient } from "@tanstack/react-query";
import { historyKeys, readFilters, useHistory, type Status } from "@/features/history";
import { TaskActionButton } from "@/features/tasks";
import { RelativeTime } from "@/components/time";
import { queuesKeys } from "../api/keys";

/**
 * The latest tasks in one status with the action that fits it: retry for failed ones,
 * cancel for pending and running ones. Actions only for operators.
 */
export function TaskList({ status, title, canOperate }: { status: Status; title: string; canOperate: boolean }) {
  // Dismissed failures (the /failures page) are no longer "recently failed".
  const filters = { ...readFilters(new URLSearchParams()), status, pageSize: 25, hideDismissed: status === "failed" };
  const { data, error } = useHistory(filters);
  const action = status === "failed" || status === "cancelled" ? "retry" : "cancel";
  const headingId = `tasks-${status}`;
  const queryClient = useQueryClient();
  // A retried or cancelled task moves between these lists and the depths.
  const refresh = () => {
    void queryClient.invalidateQueries({ queryKey: historyKeys.lists() });
    void queryClient.invalidateQueries({ queryKey: queuesKeys.all() });
  };

  return (
    <section className="card" aria-labelledby={headingId}>
      <header className="card__header">
        <h2 id={headingId}>{title}</h2>
        <Link className="small" to={`/monitoring?status=${status}`}>
          all in history
        </Link>
      </header>
      {error !== null && (
        <p className="error-text" role="alert">
          Could not load tasks: {error.message}
        </p>
      )}
      {data === undefined && error === null && <p className="placeholder">Loading…</p>}
      {data !== undefined && data.items.length === 0 && <p className="muted small">None.</p>}
      {data !== undefined && data.items.length > 0 && (
        <ul className="task-list" aria-label={title}>
          {data.items.map((item) => (
            <li key={item.id} className="task-list__item" data-testid={`${status}-task`}>
              <div>
                <code className="task-list__name">{item.task_name}</code>{" "}
                <span className="muted small">
                  <Link to={`/tasks/${encodeURIComponent(item.task_id)}`}>{item.task_id.slice(0, 8)}</Link> ·{" "}
                  <RelativeTime iso={item.created_at} />
                  {item.error_message ? ` · ${item.error_message}` : ""}
                </span>
              </div>
              {canOperate && <TaskActionButton taskId={item.task_id} action={action} onSettled={refresh} />}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
