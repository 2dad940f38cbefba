/** The monitoring feature's query keys: every key it uses comes from here. */
export const monitoringKeys = {
  all: () => ["monitoring"] as const,
  allMetrics: () => [...monitoringKeys.all(), "metrics"] as const,
  metrics: (timeWindow: number) => [...monitoringKeys.allMetrics(), timeWindow] as const,
  allTimeseries: () => [...monitoringKeys.all(), "timeseries"] as const,
  timeseries: (timeWindow: number) => [...monitoringKeys.allTimeseries(), timeWindow] as const,
};
