import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, toApiError, type Schemas } from "@/lib/api-client";

export type QueuesResponse = Schemas["QueuesResponse"];
export type DemoRequest = Schemas["DemoRequest"];

export function useQueues() {
  return useQuery({
    queryKey: ["queues"],
    queryFn: async ({ signal }): Promise<QueuesResponse> => {
      const { data, error, response } = await api.GET("/api/v1/queues", { signal });
      if (data === undefined) throw toApiError(response, error);
      return data;
    },
    refetchInterval: 5_000,
  });
}

/** Enqueue demo tasks: a way to see the whole pipeline move without a real workload. */
export function useRunDemo() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (body: DemoRequest) => {
      const { data, error, response } = await api.POST("/api/v1/demo", { body });
      if (data === undefined) throw toApiError(response, error);
      return data;
    },
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: ["queues"] }),
  });
}
