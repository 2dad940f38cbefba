import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { api, type Schemas, unwrap } from "@/lib/api-client";

export type MetricsResponse = Schemas["MetricsResponse"];
export type TaskMetricsItem = Schemas["TaskMetricsItem"];

export const metricsQueryKey = (timeWindow: number) => ["monitoring", "metrics", timeWindow] as const;

export async function getMetrics(timeWindow: number, signal?: AbortSignal): Promise<MetricsResponse> {
  return unwrap(
    await api.GET("/api/v1/monitoring/metrics", {
      params: { query: { time_window: timeWindow } },
      signal,
    }),
  );
}

/** Per-task metrics over the last `timeWindow` hours (1–720), refreshed periodically. */
export function useMetrics(timeWindow: number) {
  return useQuery({
    queryKey: metricsQueryKey(timeWindow),
    queryFn: ({ signal }) => getMetrics(timeWindow, signal),
    placeholderData: keepPreviousData,
    refetchInterval: 30_000,
  });
}
