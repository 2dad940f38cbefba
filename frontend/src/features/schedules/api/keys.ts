/** The schedules feature's query keys: every key it uses comes from here. */
export const schedulesKeys = {
  all: () => ["schedules"] as const,
  list: () => [...schedulesKeys.all(), "list"] as const,
};
