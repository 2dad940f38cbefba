import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useRefreshOnLiveEvents } from "@/features/live";
import { api, type Schemas, unwrap } from "@/lib/api-client";
import { monitoringKeys } from "./keys";

export type MetricsResponse = Schemas["MetricsResponse"];
export type TaskMetricsItem = Schemas["TaskMetricsItem"];

export async function getMetrics(timeWindow: number, signal?: AbortSignal): Promise<MetricsResponse> {
  return unwrap(
    await api.GET("/api/v1/monitoring/metrics", {
      params: { query: { time_window: timeWindow } },
      signal,
    }),
  );
}

/** Per-task metrics over the last `timeWindow` hours (1–720), refreshed periodically and on live events. */
export function useMetrics(timeWindow: number) {
  useRefreshOnLiveEvents(monitoringKeys.allMetrics);
  return useQuery({
    queryKey: monitoringKeys.metrics(timeWindow),
    queryFn: ({ signal }) => getMetrics(timeWindow, signal),
    placeholderData: keepPreviousData,
    refetchInterval: 30_000,
  });
}
