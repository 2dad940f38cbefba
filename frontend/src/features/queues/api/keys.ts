/** The queues feature's query keys: every key it uses comes from here. */
export const queuesKeys = {
  all: () => ["queues"] as const,
  overview: () => [...queuesKeys.all(), "overview"] as const,
};
