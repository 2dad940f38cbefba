import { useCallback, useSyncExternalStore } from "react";

/** The width at and below which the dashboard lays out for a phone (index.css agrees). */
export const PHONE_QUERY = "(max-width: 640px)";

/**
 * Whether a CSS media query matches, re-rendering when it starts or stops matching (a phone
 * turned sideways). False where there is no `matchMedia` (tests that do not stub it).
 */
export function useMediaQuery(query: string): boolean {
  const subscribe = useCallback(
    (onChange: () => void) => {
      if (typeof window.matchMedia !== "function") return () => undefined;
      const list = window.matchMedia(query);
      list.addEventListener("change", onChange);
      return () => list.removeEventListener("change", onChange);
    },
    [query],
  );
  return useSyncExternalStore(
    subscribe,
    () => typeof window.matchMedia === "function" && window.matchMedia(query).matches,
    () => false,
  );
}
