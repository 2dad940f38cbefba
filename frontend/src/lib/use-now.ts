import { useEffect, useState } from "react";

/**
 * The current time (Date.now()), ticking each second while `live`: for countdowns and
 * growing waits. It ticks at once when `live` turns on, so a deadline set long after mount
 * is not counted from a stale "now".
 */
export function useNow(live: boolean): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!live) return;
    const first = setTimeout(() => setNow(Date.now()), 0);
    const timer = setInterval(() => setNow(Date.now()), 1_000);
    return () => {
      clearTimeout(first);
      clearInterval(timer);
    };
  }, [live]);
  return now;
}
