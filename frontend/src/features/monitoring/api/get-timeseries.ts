import { keepPreviousData, useQuery } from "@tanstack/react-query";
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

/** Throughput, failures and p95 duration per time bucket, for the charts. */
export function useTimeseries(timeWindow: number) {
  return useQuery({
    queryKey: monitoringKeys.timeseries(timeWindow),
    queryFn: ({ signal }) => getTimeseries(timeWindow, signal),
    placeholderData: keepPreviousData,
    refetchInterval: 60_000,
  });
}
