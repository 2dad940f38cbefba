import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, type Schemas, unwrap } from "@/lib/api-client";
import { tasksKeys } from "./keys";

export type TaskDetail = Schemas["TaskDetail"];

/**
 * A task's latest state and every attempt; polled while it is not finished. `null` while the
 * task has no log row yet (just queued, its `pending` row not written): the server answers
 * that poll with 204 (`missing_ok`), not a 404 that the browser would log on every poll.
 */
export function useTask(taskId: string | null, pollMs = 2_000) {
  return useQuery({
    queryKey: tasksKeys.detail(taskId),
    queryFn: async ({ signal }): Promise<TaskDetail | null> => {
      const result = await api.GET("/api/v1/tasks/{task_id}", {
        params: { path: { task_id: taskId ?? "" }, query: { missing_ok: true } },
        signal,
      });
      if (result.response.status === 204) return null;
      return unwrap(result);
    },
    enabled: taskId !== null,
    refetchInterval: (query) => {
      const status = query.state.data?.status;
      return status === "pending" || status === "running" || status === undefined ? pollMs : false;
    },
  });
}

/**
 * Retry a failed or cancelled task (a new task id), or cancel a pending or running one.
 * `onSettled` lets the caller refresh the lists it shows the task in (their keys are its own).
 */
export function useTaskAction(action: "retry" | "cancel", onSettled?: () => void) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (taskId: string): Promise<string> => {
      const path = { params: { path: { task_id: taskId } } };
      if (action === "retry") {
        const data = unwrap(await api.POST("/api/v1/tasks/{task_id}/retry", path));
        return `Retried as ${data.task_id}`;
      }
      const data = unwrap(await api.POST("/api/v1/tasks/{task_id}/cancel", path));
      return `Cancel requested (${data.status})`;
    },
    onSettled: () => {
      void queryClient.invalidateQueries({ queryKey: tasksKeys.all() });
      onSettled?.();
    },
  });
}
