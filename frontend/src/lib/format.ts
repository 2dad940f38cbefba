const EMPTY = "—";

/** 850 → "850 ms", 1234 → "1.23 s", 125000 → "2m 5s"; null → "—". */
export function formatDuration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return EMPTY;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`;
  const totalSeconds = Math.round(ms / 1000);
  const minutes = Math.floor(totalSeconds / 60);
  const seconds = totalSeconds % 60;
  if (minutes < 60) return `${minutes}m ${seconds}s`;
  return `${Math.floor(minutes / 60)}h ${minutes % 60}m`;
}

/** A 0–1 ratio as a percentage: 0.9523 → "95.2%"; null → "—". */
export function formatRate(rate: number | null): string {
  if (rate === null || !Number.isFinite(rate)) return EMPTY;
  return `${(rate * 100).toFixed(1).replace(/\.0$/, "")}%`;
}

export function formatCount(n: number): string {
  return n.toLocaleString("en-US");
}

/** A count with its noun, singular for exactly one: "1 execution", "1,234 executions". */
export function formatCountOf(n: number, noun: string): string {
  return `${formatCount(n)} ${noun}${n === 1 ? "" : "s"}`;
}

/** A duration in words for "cached 5 minutes ago": 42 → "42 seconds", 7200 → "2 hours". */
export function formatAge(seconds: number): string {
  const units: [number, string][] = [
    [86_400, "day"],
    [3_600, "hour"],
    [60, "minute"],
  ];
  for (const [size, name] of units) {
    if (seconds >= size) {
      const n = Math.floor(seconds / size);
      return `${n} ${name}${n === 1 ? "" : "s"}`;
    }
  }
  const n = Math.max(0, Math.round(seconds));
  return `${n} second${n === 1 ? "" : "s"}`;
}

/** HH:MM:SS in the browser's time zone. */
export function formatClock(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleTimeString("en-GB", { hour12: false });
}

export function formatDateTime(iso: string | null): string {
  if (iso === null) return EMPTY;
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString("en-GB", { hour12: false });
}
