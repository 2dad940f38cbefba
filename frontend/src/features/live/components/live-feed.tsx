import { memo } from "react";
import { Link } from "react-router";
import { formatClock, formatDuration } from "@/lib/format";
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

/** The last 50 lifecycle events, newest first, as they happen. */
export function LiveFeed() {
  const entries = useFeed();
  return (
    <section className="card feed" aria-labelledby="feed-title">
      <header className="card__header">
        <h2 id="feed-title">Live activity</h2>
        <ConnectionStatus />
      </header>
      {entries.length === 0 ? (
        <p className="muted small">
          Waiting for task events… They appear as soon as a task is queued, e.g. with <code>./dev demo 50</code>.
        </p>
      ) : (
        <ol className="feed__list" aria-label="Recent task events">
          {entries.map(({ seq, event }) => (
            <FeedItem key={seq} event={event} />
          ))}
        </ol>
      )}
    </section>
  );
}
