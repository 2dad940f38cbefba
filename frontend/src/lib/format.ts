import { timeZone, type TimeZoneChoice } from "./time-zone";

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

// One formatter for every count: `toLocaleString` builds a new one per call, which the
// dashboard's first render pays for each number on its cards.
const COUNT = new Intl.NumberFormat("en-US");

export function formatCount(n: number): string {
  return COUNT.format(n);
}

/**
 * A count with its noun, singular for exactly one: "1 execution", "1,234 executions"; pass the
 * plural when it is not the noun + "s" ("public repositories").
 */
export function formatCountOf(n: number, noun: string, plural = `${noun}s`): string {
  return `${formatCount(n)} ${n === 1 ? noun : plural}`;
}

/** A JSON value as an indented block; `undefined` (absent) as "null". */
export function formatJson(value: unknown): string {
  return value === undefined ? "null" : JSON.stringify(value, null, 2);
}

/** Seconds left, for a countdown: 2 → "2 s", 75 → "1:15". */
export function formatCountdown(seconds: number): string {
  const n = Math.max(0, Math.ceil(seconds));
  return n < 60 ? `${n} s` : `${Math.floor(n / 60)}:${String(n % 60).padStart(2, "0")}`;
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

function parts(date: Date, zone: TimeZoneChoice) {
  const utc = zone === "utc";
  const pad = (n: number) => String(n).padStart(2, "0");
  return {
    date: `${utc ? date.getUTCFullYear() : date.getFullYear()}-${pad((utc ? date.getUTCMonth() : date.getMonth()) + 1)}-${pad(utc ? date.getUTCDate() : date.getDate())}`,
    clock: `${pad(utc ? date.getUTCHours() : date.getHours())}:${pad(utc ? date.getUTCMinutes() : date.getMinutes())}:${pad(utc ? date.getUTCSeconds() : date.getSeconds())}`,
    suffix: utc ? " UTC" : "",
  };
}

/** HH:MM:SS in the chosen time zone (`lib/time-zone`). */
export function formatClock(iso: string, zone: TimeZoneChoice = timeZone()): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : parts(date, zone).clock;
}

/**
 * The one date format of the dashboard: "2026-11-30 14:05:09", in the chosen time zone,
 * with " UTC" after it when that is UTC.
 */
export function formatDateTime(iso: string | null, zone: TimeZoneChoice = timeZone()): string {
  if (iso === null) return EMPTY;
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const p = parts(date, zone);
  return `${p.date} ${p.clock}${p.suffix}`;
}

/** How long ago, in words: "just now", "5 min ago", "3 h ago", "2 days ago" ("in …" ahead). */
export function formatRelative(iso: string, now: number = Date.now()): string {
  const then = new Date(iso).getTime();
  if (Number.isNaN(then)) return iso;
  const seconds = Math.round((now - then) / 1000);
  const ahead = seconds < 0;
  const s = Math.abs(seconds);
  if (s < 10) return "just now";
  const amount =
    s < 60
      ? `${s} s`
      : s < 3_600
        ? `${Math.floor(s / 60)} min`
        : s < 86_400
          ? `${Math.floor(s / 3_600)} h`
          : `${Math.floor(s / 86_400)} day${Math.floor(s / 86_400) === 1 ? "" : "s"}`;
  return ahead ? `in ${amount}` : `${amount} ago`;
}
