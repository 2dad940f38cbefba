import { useSyncExternalStore } from "react";
import { getToken, subscribe } from "./token-store";

/** The current API token (null when signed out); re-renders when it changes. */
export function useToken(): string | null {
  return useSyncExternalStore(subscribe, getToken, () => null);
}
