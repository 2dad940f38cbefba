import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { api, type Schemas, unwrap } from "@/lib/api-client";
import { toInstant, type HistoryFilters } from "../history-filters";
import { historyKeys } from "./keys";

export type HistoryPage = Schemas["HistoryResponse"];
export type TaskLogItem = Schemas["TaskLogItem"];

export function historyQuery(filters: HistoryFilters) {
  return {
    task_name: filters.taskName ?? undefined,
    status: filters.status ?? undefined,
    start_date: toInstant(filters.from),
    end_date: toInstant(filters.to),
    q: filters.q ?? undefined,
    queue: filters.queue ?? undefined,
    worker: filters.worker ?? undefined,
    fingerprint: filters.fingerprint ?? undefined,
    hide_dismissed: filters.hideDismissed || undefined,
    sort: filters.sort,
    page: filters.page,
    page_size: filters.pageSize,
  };
}

/** The history filter as the failures' bulk actions take it (the status is `failed` there). */
export function failedTasksMatching(filters: HistoryFilters) {
  const { task_name, start_date, end_date, q, queue, worker, fingerprint } = historyQuery(filters);
  return { task_name, start_date, end_date, q, queue, worker, fingerprint };
}

export async function getHistory(filters: HistoryFilters, signal?: AbortSignal): Promise<HistoryPage> {
  return unwrap(
    await api.GET("/api/v1/monitoring/history", {
      params: { query: historyQuery(filters) },
      signal,
    }),
  );
}

/** One page of the execution log, newest first; the previous page stays shown while the next loads. */
export function useHistory(filters: HistoryFilters) {
  return useQuery({
    queryKey: historyKeys.list(filters),
    queryFn: ({ signal }) => getHistory(filters, signal),
    placeholderData: keepPreviousData,
  });
}
