/** The audit feature's query keys: every key it uses comes from here. */
export const auditKeys = {
  all: () => ["audit"] as const,
  list: (action: string) => [...auditKeys.all(), "list", action] as const,
};
