import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ApiError, toApiError, type Schemas, unwrap } from "@/lib/api-client";
import { analysesKeys } from "./keys";

export type AnalysisKind = Schemas["AnalysisKind"];
export type Period = Schemas["Period"];
export type Priority = Schemas["Priority"];
export type AnalysisRequest = Schemas["AnalysisRequest"];
export type AnalysisView = Schemas["AnalysisView"];
export type AnalysisSubmitted = Schemas["AnalysisSubmitted"];
export type RefreshHistory = Schemas["RefreshHistory"];

export const KINDS: { value: AnalysisKind; label: string }[] = [
  { value: "repository", label: "Git repository" },
  { value: "github_user", label: "GitHub user" },
];
export const PERIODS: { value: Period; label: string }[] = [
  { value: "1_month", label: "Last month" },
  { value: "3_months", label: "Last 3 months" },
  { value: "6_months", label: "Last 6 months" },
  { value: "1_year", label: "Last year" },
  { value: "all", label: "All time" },
];

export function useRecentAnalyses() {
  return useQuery({
    queryKey: analysesKeys.recent(),
    queryFn: async ({ signal }) => {
      return unwrap(await api.GET("/api/v1/analyses", { params: { query: { limit: 20 } }, signal })).items;
    },
  });
}

/** What GET answers: the view, or null when there is no result and nobody is making one (404). */
export async function getAnalysis(
  kind: AnalysisKind,
  subject: string,
  period: Period | undefined,
  signal?: AbortSignal,
): Promise<AnalysisView | null> {
  const { data, error, response } = await api.GET("/api/v1/analyses/{kind}/{subject}", {
    params: { path: { kind, subject }, query: { period } },
    signal,
  });
  if (response.status === 404) return null;
  if (data === undefined) throw toApiError(response, error);
  return data;
}

/** The cached report and its freshness, polled while it is being generated. */
export function useAnalysis(kind: AnalysisKind, subject: string, period: Period | undefined) {
  return useQuery({
    queryKey: analysesKeys.detail(kind, subject, period),
    queryFn: ({ signal }) => getAnalysis(kind, subject, period, signal),
    refetchInterval: (query) => (query.state.data?.is_regenerating ? 2_000 : false),
  });
}

export function useSubmitAnalysis() {
  const queryClient = useQueryClient();
  return useMutation<AnalysisSubmitted, ApiError, AnalysisRequest>({
    mutationFn: async (body) => {
      return unwrap(await api.POST("/api/v1/analyses", { body }));
    },
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: analysesKeys.all() }),
  });
}

/** Retry a failed or cancelled analysis run: a new task, joined by identical requests. */
export function useRetryAnalysis() {
  const queryClient = useQueryClient();
  return useMutation<{ task_id: string }, ApiError, string>({
    mutationFn: async (taskId) => {
      return unwrap(await api.POST("/api/v1/tasks/{task_id}/retry", { params: { path: { task_id: taskId } } }));
    },
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: analysesKeys.all() }),
  });
}

/** Forced refreshes of one analysis (who, when, outcome) and how many the caller has left. */
export function useRefreshHistory(kind: AnalysisKind, subject: string, period: Period | undefined) {
  return useQuery({
    queryKey: analysesKeys.refreshes(kind, subject, period),
    queryFn: async ({ signal }): Promise<RefreshHistory> => {
      return unwrap(
        await api.GET("/api/v1/analyses/{kind}/{subject}/refreshes", {
          params: { path: { kind, subject }, query: { period } },
          signal,
        }),
      );
    },
  });
}
