import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useRefreshOnLiveEvents } from "@/features/live";
import { api, type Schemas, unwrap } from "@/lib/api-client";
import { queuesKeys } from "./keys";

export type QueuesResponse = Schemas["QueuesResponse"];
export type DemoRequest = Schemas["DemoRequest"];

/** Depths, in-flight counts and workers, polled and refreshed on live events. */
export function useQueues() {
  useRefreshOnLiveEvents(queuesKeys.overview);
  return useQuery({
    queryKey: queuesKeys.overview(),
    queryFn: async ({ signal }): Promise<QueuesResponse> => {
      return unwrap(await api.GET("/api/v1/queues", { signal }));
    },
    refetchInterval: 5_000,
  });
}

/** Enqueue demo tasks: a way to see the whole pipeline move without a real workload. */
export function useRunDemo() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (body: DemoRequest) => {
      return unwrap(await api.POST("/api/v1/demo", { body }));
    },
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: queuesKeys.all() }),
  });
}
