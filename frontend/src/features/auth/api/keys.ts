/** The auth feature's query keys: every key it uses comes from here. */
export const authKeys = {
  all: () => ["auth"] as const,
  me: (token: string | null) => [...authKeys.all(), "me", token] as const,
};
