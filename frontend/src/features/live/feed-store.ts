import { compareLife, supersedes, type LifePoint } from "@/lib/task-status";
import type { TaskEvent } from "./live-connection";

/** Entries the feed shows, and the events it asks the server for on load (the backfill). */
export const FEED_SIZE = 50;
/**
 * Entries the store keeps: what a filter by task name looks through, and the buffer while
 * the feed is paused. A cap, so that a tab left paused holds no more than this.
 */
export const FEED_RETAINED = 500;
/** How many tasks' furthest state the feed remembers, beyond the ones it shows. */
const REMEMBERED_TASKS = 1_000;

/** An event with a number local to this page, a stable React key however events repeat. */
export type FeedEntry = { seq: number; event: TaskEvent };

function lifePoint(event: TaskEvent): LifePoint {
  return { attempt: event.data.attempt, status: event.status };
}

/** The index of the oldest entry showing the task further along than `reached`, or -1. */
function lastLaterEntry(entries: readonly FeedEntry[], taskId: string, reached: LifePoint): number {
  for (let i = entries.length - 1; i >= 0; i--) {
    const { event } = entries[i];
    if (event.data.task_id === taskId && compareLife(lifePoint(event), reached) > 0) return i;
  }
  return -1;
}

/**
 * The last events, newest first. An external store (not React state) so that only the
 * feed re-renders when events arrive, and only once per batch.
 *
 * Events of one task come from different processes (`pending` from the API, the rest from
 * the worker), so an earlier state can arrive after a later one. Such a late event is put
 * just below the task's later entries, never above them; if those have left the feed, it is
 * dropped rather than shown as if the task had gone back. "Earlier" is lib/task-status.ts's
 * order, the one every view of a task uses.
 */
export class FeedStore {
  private entries: readonly FeedEntry[] = [];
  private seq = 0;
  private readonly furthest = new Map<string, LifePoint>();
  private readonly listeners = new Set<() => void>();

  constructor(private readonly size = FEED_RETAINED) {}

  readonly getSnapshot = (): readonly FeedEntry[] => this.entries;

  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  add(batch: readonly TaskEvent[]): void {
    if (batch.length === 0) return;
    const newest = batch.length > this.size ? batch.slice(-this.size) : batch;
    const entries = this.entries.slice();
    for (const event of newest) {
      const taskId = event.data.task_id;
      const reached = lifePoint(event);
      const known = this.furthest.get(taskId);
      if (!supersedes(reached, known)) {
        const below = lastLaterEntry(entries, taskId, reached);
        if (below >= 0) entries.splice(below + 1, 0, { seq: ++this.seq, event });
        continue;
      }
      entries.unshift({ seq: ++this.seq, event });
      this.remember(taskId, reached);
    }
    this.entries = entries.slice(0, this.size);
    for (const listener of this.listeners) listener();
  }

  private remember(taskId: string, reached: LifePoint): void {
    this.furthest.delete(taskId); // re-inserted last: the map's order is the eviction order
    this.furthest.set(taskId, reached);
    if (this.furthest.size > REMEMBERED_TASKS) {
      const oldest = this.furthest.keys().next().value;
      if (oldest !== undefined) this.furthest.delete(oldest);
    }
  }
}
