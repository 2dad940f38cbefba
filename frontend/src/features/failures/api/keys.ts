/** The failures feature's query keys: every key it uses comes from here. */
export const failuresKeys = {
  all: () => ["failures"] as const,
  groups: (windowHours: number) => [...failuresKeys.all(), "groups", windowHours] as const,
};
