import { useQueryClient } from "@tanstack/react-query";
import { useCallback, useMemo, useState } from "react";
import { Link, useSearchParams } from "react-router";
import { DataTable, type Column } from "@/components/data-table";
import { RelativeTime } from "@/components/time";
import { useCanOperate } from "@/features/auth";
import { BulkFailureAction } from "@/features/failures";
import { useLiveEvents, type TaskEvent } from "@/features/live";
import { ApiError } from "@/lib/api-client";
import { formatCount, formatCountOf, formatDuration } from "@/lib/format";
import { supersedes } from "@/lib/task-status";
import { throttle } from "@/lib/throttle";
import { failedTasksMatching, useHistory, type TaskLogItem } from "../api/get-history";
import { historyKeys } from "../api/keys";
import { readFilters, writeFilters, type HistoryFilters } from "../history-filters";
import { pageNumbers } from "../pages";
import { ExecutionDetails } from "./execution-details";
import { HistoryFilterBar } from "./history-filter-bar";

type Overlay = Map<string, Partial<TaskLogItem>>;

const rowKey = (taskId: string, attempt: number) => `${taskId}:${attempt}`;

/**
 * Live events for rows on this page update them in place (status, duration, error),
 * without refetching the page; on page 1 a throttled refetch also brings new rows in.
 */
function useLiveRows(items: TaskLogItem[] | undefined, firstPage: boolean) {
  const [overlay, setOverlay] = useState<Overlay>(() => new Map());
  const queryClient = useQueryClient();
  const visible = useMemo(() => new Set(items?.map((i) => rowKey(i.task_id, i.attempt))), [items]);
  const refetchPage = useMemo(
    () => throttle(() => void queryClient.invalidateQueries({ queryKey: historyKeys.lists() }), 2_000),
    [queryClient],
  );

  const onEvents = useCallback(
    (events: TaskEvent[]) => {
      const matching = events.filter((e) => visible.has(rowKey(e.data.task_id, e.data.attempt)));
      if (matching.length > 0) {
        setOverlay((previous) => {
          const next = new Map(previous);
          for (const e of matching) {
            const key = rowKey(e.data.task_id, e.data.attempt);
            const current = next.get(key)?.status;
            const { attempt } = e.data;
            if (current !== undefined && !supersedes({ attempt, status: e.status }, { attempt, status: current }))
              continue;
            next.set(key, {
              status: e.status,
              duration_ms: e.data.duration_ms,
              error_message: e.data.error_message,
              progress: e.data.progress,
              progress_message: e.data.progress_message,
            });
          }
          return next;
        });
      }
      if (firstPage) refetchPage();
    },
    [visible, firstPage, refetchPage],
  );
  useLiveEvents(onEvents);

  return (item: TaskLogItem): TaskLogItem => {
    const live = overlay.get(rowKey(item.task_id, item.attempt));
    // A fresher row from the server wins once it has caught up with the live status.
    return live?.status !== undefined &&
      live.status !== item.status &&
      supersedes({ attempt: item.attempt, status: live.status }, item)
      ? { ...item, ...live }
      : item;
  };
}

/** Whether anything narrows the history (not the order or the page size). */
function filtered(f: HistoryFilters): boolean {
  return [f.taskName, f.status, f.from, f.to, f.q, f.queue, f.worker].some((v) => v !== null);
}

/** No rows: with filters, say so; without any, the log is empty, so say how to fill it. */
function EmptyHistory({ filtered }: { filtered: boolean }) {
  if (filtered) return <>No executions match these filters.</>;
  return (
    <>
      No executions yet. Queue demo tasks with <code>./dev demo 50</code> (or <code>tasklens demo --count 50</code>); a
      worker must be running for them to finish: <code>./dev tasklens worker</code>, or the embedded{" "}
      <code>./dev up</code> runs them itself.
    </>
  );
}

export function HistoryTable() {
  const [params, setParams] = useSearchParams();
  const filters = readFilters(params);
  const history = useHistory(filters);
  const [expanded, setExpanded] = useState<Set<number>>(() => new Set());
  const withLive = useLiveRows(history.data?.items, filters.page === 1);

  // From the address bar, not this render's params: two quick changes (task name, then
  // status) must both land, and the first has already been written there.
  const go = (patch: Partial<HistoryFilters>) => {
    const latest = new URLSearchParams(window.location.search);
    setParams(writeFilters(latest, { ...readFilters(latest), ...patch }));
  };
  const toggle = (id: number) =>
    setExpanded((previous) => {
      const next = new Set(previous);
      if (!next.delete(id)) next.add(id);
      return next;
    });

  const columns: Column<TaskLogItem>[] = [
    {
      header: "Task name",
      cell: (item) => {
        const open = expanded.has(item.id);
        return (
          <>
            <button
              type="button"
              className="row-toggle"
              aria-expanded={open}
              aria-controls={`details-${item.id}`}
              onClick={() => toggle(item.id)}
            >
              <span aria-hidden="true">{open ? "▾" : "▸"}</span> {item.task_name}
            </button>{" "}
            <Link
              className="small"
              to={`/tasks/${encodeURIComponent(item.task_id)}`}
              aria-label={`Task page of ${item.task_name} ${item.task_id}`}
            >
              open
            </Link>
          </>
        );
      },
    },
    { header: "Status", cell: (item) => <span className={`pill status--${item.status}`}>{item.status}</span> },
    { header: "Attempt", cell: (item) => item.attempt },
    { header: "Started", cell: (item) => <RelativeTime iso={item.started_at} /> },
    { header: "Duration", cell: (item) => formatDuration(item.duration_ms) },
    {
      header: "Error",
      className: "table__error",
      title: (item) => item.error_message ?? undefined,
      cell: (item) => item.error_message ?? "",
    },
  ];

  const { data, error } = history;
  const canOperate = useCanOperate();
  const bulkFilter = failedTasksMatching(filters);
  const bulkKey = JSON.stringify(bulkFilter); // a new filter starts a new count
  const totalPages = Math.max(1, data?.total_pages ?? 1); // no rows is still page 1 of 1

  return (
    <section className="card history" aria-labelledby="history-title">
      <header className="card__header">
        <h2 id="history-title">Execution history</h2>
        {data && (
          <span className="muted small" data-testid="history-total">
            {data.total_is_estimate ? "about " : ""}
            {formatCountOf(data.total_count, "execution")}
          </span>
        )}
      </header>
      <HistoryFilterBar filters={filters} onChange={go} />
      {filters.status === "failed" && canOperate && (
        <p className="history__bulk small" data-testid="history-bulk">
          Every failed task this filter matches (not only this page):{" "}
          <BulkFailureAction key={`retry ${bulkKey}`} target={{ filter: bulkFilter }} action="retry" />{" "}
          <BulkFailureAction key={`dismiss ${bulkKey}`} target={{ filter: bulkFilter }} action="dismiss" />
        </p>
      )}
      {error !== null && (
        <div role="alert" className="placeholder placeholder--error">
          Could not load history{error instanceof ApiError ? ` (HTTP ${error.status})` : ""}: {error.message}{" "}
          {filters.page > 1 ? (
            <button type="button" className="button button--small" onClick={() => go({ page: 1 })}>
              Back to page 1
            </button>
          ) : (
            <button type="button" className="button button--small" onClick={() => void history.refetch()}>
              Retry
            </button>
          )}
        </div>
      )}
      {data === undefined && error === null && (
        <p role="status" className="placeholder">
          Loading history…
        </p>
      )}
      {data !== undefined && (
        <>
          <DataTable
            columns={columns}
            rows={data.items.map(withLive)}
            rowKey={(item) => item.id}
            rowTestId="history-row"
            busy={history.isFetching}
            label="Executions"
            empty={<EmptyHistory filtered={filtered(filters)} />}
            details={(item) =>
              expanded.has(item.id) ? { id: `details-${item.id}`, content: <ExecutionDetails item={item} /> } : null
            }
          />
          <nav className="pager" aria-label="History pages">
            <button
              type="button"
              className="button"
              disabled={filters.page <= 1}
              onClick={() => go({ page: filters.page - 1 })}
            >
              Previous
            </button>
            <span className="muted small" aria-live="polite">
              Page {filters.page} of {formatCount(totalPages)}
            </span>
            {totalPages > 1 && (
              <span className="pager__numbers">
                {pageNumbers(filters.page, totalPages).map((p, i) =>
                  p === null ? (
                    <span key={`gap-${i}`} className="muted" aria-hidden="true">
                      …
                    </span>
                  ) : (
                    <button
                      key={p}
                      type="button"
                      className="button button--small"
                      aria-label={`Page ${p}`}
                      aria-current={p === filters.page ? "page" : undefined}
                      disabled={p === filters.page}
                      onClick={() => go({ page: p })}
                    >
                      {formatCount(p)}
                    </button>
                  ),
                )}
              </span>
            )}
            <button
              type="button"
              className="button"
              disabled={filters.page >= totalPages}
              onClick={() => go({ page: filters.page + 1 })}
            >
              Next
            </button>
          </nav>
        </>
      )}
    </section>
  );
}
