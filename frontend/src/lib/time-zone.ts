import { useSyncExternalStore } from "react";

/** Which clock the dashboard shows times in: the browser's, or UTC (as logs and servers do). */
export type TimeZoneChoice = "local" | "utc";

const KEY = "tasklens.timeZone";
const listeners = new Set<() => void>();
let unstored: TimeZoneChoice = "local"; // the choice when the browser blocks storage

/** The chosen zone, remembered in this browser; for formatting outside React (format.ts). */
export function timeZone(): TimeZoneChoice {
  try {
    return window.localStorage.getItem(KEY) === "utc" ? "utc" : "local";
  } catch {
    return unstored;
  }
}

export function setTimeZone(zone: TimeZoneChoice): void {
  try {
    window.localStorage.setItem(KEY, zone);
  } catch {
    unstored = zone;
  }
  listeners.forEach((l) => l());
}

/** The chosen zone; the component re-renders when it changes. */
export function useTimeZone(): TimeZoneChoice {
  return useSyncExternalStore((listener) => {
    listeners.add(listener);
    return () => listeners.delete(listener);
  }, timeZone);
}
