import type { FeedEntry } from "./feed-store";

/** The newest `limit` entries of the task `taskName` (of every task for null), newest first. */
export function visibleEntries(
  entries: readonly FeedEntry[],
  taskName: string | null,
  limit: number,
): readonly FeedEntry[] {
  if (taskName === null) return entries.length > limit ? entries.slice(0, limit) : entries;
  const shown: FeedEntry[] = [];
  for (const entry of entries) {
    if (entry.event.task_name !== taskName) continue;
    shown.push(entry);
    if (shown.length === limit) break;
  }
  return shown;
}

/** The newest local number in `entries` (0 for none): what came after it is new. */
export function latestSeq(entries: readonly FeedEntry[]): number {
  let latest = 0;
  for (const { seq } of entries) latest = Math.max(latest, seq);
  return latest;
}

/**
 * What arrived after `afterSeq` for `taskName` (every task for null), and whether there may
 * be more than that: when even the oldest entry the store kept is new, events that came in
 * between have already left it.
 */
export function newerThan(
  entries: readonly FeedEntry[],
  afterSeq: number,
  taskName: string | null,
  retained: number,
): { count: number; more: boolean } {
  let count = 0;
  for (const { seq, event } of entries) {
    if (seq > afterSeq && (taskName === null || event.task_name === taskName)) count++;
  }
  const oldest = entries.at(-1);
  return { count, more: entries.length >= retained && oldest !== undefined && oldest.seq > afterSeq };
}

/** The names to filter by: every known one and every one in the feed, sorted, each once. */
export function taskNameChoices(known: readonly string[], entries: readonly FeedEntry[]): string[] {
  const names = new Set(known);
  for (const { event } of entries) names.add(event.task_name);
  return [...names].sort();
}
