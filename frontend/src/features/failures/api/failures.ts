import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useRefreshOnLiveEvents } from "@/features/live";
import { api, type Schemas, unwrap } from "@/lib/api-client";
import { failuresKeys } from "./keys";

export type FailuresResponse = Schemas["FailuresResponse"];
export type FailureGroup = Schemas["FailureGroupItem"];
export type BulkRetryResponse = Schemas["BulkRetryResponse"];
export type DismissResponse = Schemas["DismissResponse"];
export type BulkAction = "retry" | "dismiss";

/** The window's failure groups, newest first; refreshed on live events and every 15 s. */
export function useFailures(windowHours: number) {
  useRefreshOnLiveEvents(failuresKeys.all);
  return useQuery({
    queryKey: failuresKeys.groups(windowHours),
    queryFn: async ({ signal }): Promise<FailuresResponse> => {
      return unwrap(await api.GET("/api/v1/failures", { params: { query: { time_window: windowHours } }, signal }));
    },
    refetchInterval: 15_000,
  });
}

export type BulkOutcome =
  { action: "retry"; result: BulkRetryResponse } | { action: "dismiss"; result: DismissResponse };

/** The failed tasks a bulk action is for: one group of the window, or a history filter. */
export type BulkTarget =
  { fingerprint: string; windowHours: number } | { filter: Omit<Schemas["FailureFilterRequest"], "dry_run"> };

/**
 * Retry or dismiss a group's tasks, or those matching a history filter. `dryRun` only
 * counts them: the confirmation shows that count before anything is sent.
 */
export function useBulkAction(target: BulkTarget, action: BulkAction) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (dryRun: boolean): Promise<BulkOutcome> => {
      if ("filter" in target) {
        const body = { ...target.filter, dry_run: dryRun };
        if (action === "retry") {
          return { action, result: unwrap(await api.POST("/api/v1/failures/retry", { body })) };
        }
        return { action, result: unwrap(await api.POST("/api/v1/failures/dismiss", { body })) };
      }
      const params = { path: { fingerprint: target.fingerprint } };
      const body = { time_window: target.windowHours, dry_run: dryRun };
      if (action === "retry") {
        return { action, result: unwrap(await api.POST("/api/v1/failures/{fingerprint}/retry", { params, body })) };
      }
      return { action, result: unwrap(await api.POST("/api/v1/failures/{fingerprint}/dismiss", { params, body })) };
    },
    onSuccess: (_data, dryRun) => {
      if (!dryRun) void queryClient.invalidateQueries({ queryKey: failuresKeys.all() });
    },
  });
}
