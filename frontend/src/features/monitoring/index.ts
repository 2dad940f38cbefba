export { useMetrics, getMetrics, metricsQueryKey, type MetricsResponse, type TaskMetricsItem } from "./api/get-metrics";
export { MetricsCard, MetricsCards } from "./components/metrics-cards";
export { MonitoringPage } from "./components/monitoring-page";
