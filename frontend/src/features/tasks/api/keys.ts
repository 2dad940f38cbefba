/** The tasks feature's query keys: every key it uses comes from here. */
export const tasksKeys = {
  all: () => ["tasks"] as const,
  detail: (taskId: string | null) => [...tasksKeys.all(), "detail", taskId] as const,
};
