/** The alerts feature's query keys: every key it uses comes from here. */
export const alertsKeys = {
  all: () => ["alerts"] as const,
  firings: () => [...alertsKeys.all(), "firings"] as const,
  rules: () => [...alertsKeys.all(), "rules"] as const,
};
