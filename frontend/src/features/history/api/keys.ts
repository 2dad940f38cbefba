import type { HistoryFilters } from "../history-filters";

/** The history feature's query keys: every key it uses comes from here. */
export const historyKeys = {
  all: () => ["history"] as const,
  lists: () => [...historyKeys.all(), "list"] as const,
  list: (filters: HistoryFilters) => [...historyKeys.lists(), filters] as const,
  taskNames: () => [...historyKeys.all(), "task-names"] as const,
};
