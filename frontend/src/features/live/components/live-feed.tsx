import { memo, useMemo, useState } from "react";
import { Link } from "react-router";
import { Field } from "@/components/field";
import { formatClock, formatDuration } from "@/lib/format";
import { FEED_RETAINED, FEED_SIZE, type FeedEntry } from "../feed-store";
import { latestSeq, newerThan, taskNameChoices, visibleEntries } from "../feed-view";
import type { TaskEvent } from "../live-connection";
import { useFeed } from "../live-provider";
import { ConnectionStatus } from "./connection-status";

export function eventKey(event: TaskEvent): string {
  return `${event.data.task_id}:${event.data.attempt}:${event.status}`;
}

const FeedItem = memo(function FeedItem({ event }: { event: TaskEvent }) {
  const duration = event.data.duration_ms;
  return (
    <li className={`feed__item status--${event.status}`} data-event-key={eventKey(event)}>
      <Link className="feed__name" to={`/tasks/${encodeURIComponent(event.data.task_id)}`}>
        {event.task_name}
      </Link>{" "}
      <span className="feed__status">{event.status}</span>{" "}
      <span className="muted">at {formatClock(event.timestamp)}</span>
      {duration !== null && <span className="muted"> ({formatDuration(duration)})</span>}
      {event.data.attempt > 1 && <span className="muted"> · attempt {event.data.attempt}</span>}
    </li>
  );
});

const NO_NAMES: readonly string[] = [];

function plural(count: number, more: boolean): string {
  return `${String(count)}${more ? "+" : ""} new event${count === 1 && !more ? "" : "s"}`;
}

/**
 * The last 50 lifecycle events, newest first, as they happen (the newest ones the server
 * holds on load). Filtered by task name among the last FEED_RETAINED events; paused, it
 * stands still while the store goes on collecting (up to FEED_RETAINED events: beyond that
 * the oldest go, and the count reads "500+").
 */
export function LiveFeed({ taskNames = NO_NAMES }: { taskNames?: readonly string[] }) {
  const entries = useFeed();
  const [taskName, setTaskName] = useState<string | null>(null);
  const [frozen, setFrozen] = useState<readonly FeedEntry[] | null>(null);
  const paused = frozen !== null;
  const source = frozen ?? entries;
  const shown = useMemo(() => visibleEntries(source, taskName, FEED_SIZE), [source, taskName]);
  const names = useMemo(() => taskNameChoices(taskNames, entries), [taskNames, entries]);
  const pausedAt = useMemo(() => (frozen === null ? 0 : latestSeq(frozen)), [frozen]);
  const newer = paused ? newerThan(entries, pausedAt, taskName, FEED_RETAINED) : null;

  return (
    <section className="card feed" aria-labelledby="feed-title">
      <header className="card__header">
        <h2 id="feed-title">Live activity</h2>
        <ConnectionStatus />
      </header>
      <div className="feed__controls">
        <Field label="Show events of" className="inline-field">
          {(id) => (
            <select id={id} value={taskName ?? ""} onChange={(e) => setTaskName(e.target.value || null)}>
              <option value="">All tasks</option>
              {names.map((name) => (
                <option key={name} value={name}>
                  {name}
                </option>
              ))}
            </select>
          )}
        </Field>
        <button
          type="button"
          className="button button--small"
          aria-pressed={paused}
          onClick={() => setFrozen(paused ? null : entries)}
        >
          {paused ? "Resume" : "Pause"}
        </button>
        <span className="muted small" role="status" aria-live="polite">
          {newer !== null && `Paused · ${plural(newer.count, newer.more)}`}
        </span>
      </div>
      {shown.length > 0 ? (
        <ol className="feed__list" aria-label="Recent task events">
          {shown.map(({ seq, event }) => (
            <FeedItem key={seq} event={event} />
          ))}
        </ol>
      ) : taskName !== null ? (
        <p className="muted small">
          No events of <code>{taskName}</code> among the last {FEED_RETAINED} events{paused ? " before the pause" : ""}.
        </p>
      ) : (
        <p className="muted small">
          Waiting for task events… They appear as soon as a task is queued, e.g. with <code>./dev demo 50</code>.
        </p>
      )}
    </section>
  );
}
