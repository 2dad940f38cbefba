import { useQuery } from "@tanstack/react-query";
import { api, unwrap } from "@/lib/api-client";

/** Every task name ever logged: the history filter's choices. */
export function useTaskNames() {
  return useQuery({
    queryKey: ["monitoring", "task-names"],
    queryFn: async ({ signal }) => {
      return unwrap(await api.GET("/api/v1/monitoring/task-names", { signal }));
    },
    staleTime: 60_000,
  });
}
