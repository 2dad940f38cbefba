import type { Schemas } from "@/lib/api-client";

type MetricsResponse = Schemas["MetricsResponse"];

export const metricsResponse: MetricsResponse = {
  time_window_hours: 24,
  generated_at: "2025-01-02T03:04:05Z",
  log_rows_dropped: 0,
  metrics: [
    {
      task_name: "reports.build",
      total_executions: 1234,
      pending: 3,
      running: 2,
      success: 1180,
      failed: 41,
      cancelled: 8,
      avg_duration_ms: 1534.4,
      p95_duration_ms: 4870,
      success_rate: 0.9664,
    },
    {
      task_name: "emails.send",
      total_executions: 7,
      pending: 7,
      running: 0,
      success: 0,
      failed: 0,
      cancelled: 0,
      avg_duration_ms: null,
      p95_duration_ms: null,
      success_rate: null,
    },
  ],
};

export const emptyHistory = { total_count: 0, page: 1, page_size: 25, total_pages: 1, items: [] };
export const emptyTimeseries = {
  time_window_hours: 24,
  generated_at: "2025-01-02T03:04:05Z",
  bucket_seconds: 3600,
  series: [],
};

/** The dashboard's calls with quiet defaults; a test overrides the one it is about. */
export function dashboardApi(overrides: Partial<Record<string, () => Response | undefined>> = {}) {
  const json = (body: unknown, status = 200) =>
    new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
  const defaults: Partial<Record<string, () => Response>> = {
    "/api/v1/me": () => json({ name: "alice", role: "operator" }),
    "/api/v1/monitoring/metrics": () => json(metricsResponse),
    "/api/v1/monitoring/history": () => json(emptyHistory),
    "/api/v1/monitoring/timeseries": () => json(emptyTimeseries),
    "/api/v1/monitoring/task-names": () => json(["emails.send", "reports.build"]),
  };
  return (url: URL): Response | undefined => (overrides[url.pathname] ?? defaults[url.pathname])?.();
}
