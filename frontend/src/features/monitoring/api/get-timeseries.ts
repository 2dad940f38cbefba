import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useRefreshOnLiveEvents } from "@/features/live";
import { api, type Schemas, unwrap } from "@/lib/api-client";
import { monitoringKeys } from "./keys";

export type Timeseries = Schemas["TimeseriesResponse"];

export async function getTimeseries(timeWindow: number, signal?: AbortSignal): Promise<Timeseries> {
  return unwrap(
    await api.GET("/api/v1/monitoring/timeseries", {
      params: { query: { time_window: timeWindow } },
      signal,
    }),
  );
}

/** The charts refetch on live events less often than the cards: a 30-day series costs several
 * times as much, and moves slowly. */
export const CHARTS_REFRESH_MS = 10_000;

/** Throughput, failures and p95 duration per time bucket, for the charts (live events refresh them too). */
export function useTimeseries(timeWindow: number) {
  useRefreshOnLiveEvents(monitoringKeys.allTimeseries, CHARTS_REFRESH_MS);
  return useQuery({
    queryKey: monitoringKeys.timeseries(timeWindow),
    queryFn: ({ signal }) => getTimeseries(timeWindow, signal),
    placeholderData: keepPreviousData,
    refetchInterval: 60_000,
  });
}
