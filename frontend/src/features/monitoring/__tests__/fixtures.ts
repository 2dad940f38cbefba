import type { MetricsResponse } from "../api/get-metrics";

export const metricsResponse: MetricsResponse = {
  time_window_hours: 24,
  generated_at: "2025-01-02T03:04:05Z",
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
