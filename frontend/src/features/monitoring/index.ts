export { useMetrics, getMetrics, type MetricsResponse, type TaskMetricsItem } from "./api/get-metrics";
export { monitoringKeys } from "./api/keys";
export { MetricsCard, MetricsCards } from "./components/metrics-cards";
export { MonitoringPage } from "./components/monitoring-page";
