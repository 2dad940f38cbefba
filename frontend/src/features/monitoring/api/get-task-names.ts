import { useQuery } from "@tanstack/react-query";
import { api, toApiError } from "@/lib/api-client";

/** Every task name ever logged: the history filter's choices. */
export function useTaskNames() {
  return useQuery({
    queryKey: ["monitoring", "task-names"],
    queryFn: async ({ signal }) => {
      const { data, error, response } = await api.GET("/api/v1/monitoring/task-names", { signal });
      if (data === undefined) throw toApiError(response, error);
      return data;
    },
    staleTime: 60_000,
  });
}
