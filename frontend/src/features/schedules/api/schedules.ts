import { useQuery } from "@tanstack/react-query";
import { api, type Schemas, unwrap } from "@/lib/api-client";
import { schedulesKeys } from "./keys";

export type SchedulesResponse = Schemas["SchedulesResponse"];
export type ScheduleItem = Schemas["ScheduleItem"];

/** The schedules file's entries with next runs and last outcomes; a send happens at most
 * once a minute for a cron, so a 15 s poll keeps "next run" and outcomes current. */
export function useSchedules() {
  return useQuery({
    queryKey: schedulesKeys.list(),
    queryFn: async ({ signal }): Promise<SchedulesResponse> => {
      return unwrap(await api.GET("/api/v1/schedules", { signal }));
    },
    refetchInterval: 15_000,
  });
}
