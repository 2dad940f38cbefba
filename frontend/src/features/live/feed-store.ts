import type { TaskEvent } from "./live-connection";

export const FEED_SIZE = 50;

/** An event with a number local to this page, a stable React key however events repeat. */
export type FeedEntry = { seq: number; event: TaskEvent };

/**
 * The last events, newest first. An external store (not React state) so that only the
 * feed re-renders when events arrive, and only once per batch.
 */
export class FeedStore {
  private entries: readonly FeedEntry[] = [];
  private seq = 0;
  private readonly listeners = new Set<() => void>();

  constructor(private readonly size = FEED_SIZE) {}

  readonly getSnapshot = (): readonly FeedEntry[] => this.entries;

  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  add(batch: readonly TaskEvent[]): void {
    if (batch.length === 0) return;
    const newest = batch.length > this.size ? batch.slice(-this.size) : batch;
    const added = newest.map((event) => ({ seq: ++this.seq, event })).reverse();
    this.entries = added.concat(this.entries).slice(0, this.size);
    for (const listener of this.listeners) listener();
  }
}
