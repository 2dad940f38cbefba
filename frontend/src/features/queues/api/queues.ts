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

export type QueueName = Schemas["Priority"];
const QUEUE_NAMES: readonly string[] = ["high", "default", "low"] satisfies QueueName[];

/** The API names its queues as plain strings in the listing; these three can be controlled. */
export function isQueueName(name: string): name is QueueName {
  return QUEUE_NAMES.includes(name);
}
export type QueueAction = "pause" | "resume" | "purge";

/**
 * Pause, resume or purge one priority queue. Resolves to what happened, in words
 * ("Paused", "Purged 12 waiting tasks"); the queues refresh either way.
 */
export function useQueueAction(queue: QueueName) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (action: QueueAction): Promise<string> => {
      const params = { params: { path: { queue } } };
      if (action === "purge") {
        const data = unwrap(await api.POST("/api/v1/queues/{queue}/purge", params));
        return `Purged ${data.purged} waiting ${data.purged === 1 ? "task" : "tasks"}`;
      }
      if (action === "pause") {
        unwrap(await api.POST("/api/v1/queues/{queue}/pause", params));
        return "Paused";
      }
      unwrap(await api.POST("/api/v1/queues/{queue}/resume", params));
      return "Resumed";
    },
    onSettled: () => void queryClient.invalidateQueries({ queryKey: queuesKeys.all() }),
  });
}
