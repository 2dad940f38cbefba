import { useQuery } from "@tanstack/react-query";
import { useRefreshOnLiveEvents } from "@/features/live";
import { api, unwrap } from "@/lib/api-client";
import { historyKeys } from "./keys";

/** Every task name ever logged: the history filter's choices. */
export function useTaskNames() {
  useRefreshOnLiveEvents(historyKeys.taskNames); // a task run for the first time joins the list
  return useQuery({
    queryKey: historyKeys.taskNames(),
    queryFn: async ({ signal }) => {
      return unwrap(await api.GET("/api/v1/monitoring/task-names", { signal }));
    },
    staleTime: 60_000,
  });
}
