import type { QueuesResponse } from "../api/queues";
import { formatCount, formatDateTime, formatDuration } from "@/lib/format";

type Worker = QueuesResponse["workers"][number];

/** A count a worker too old to report it leaves out: a dash, not a 0 that would be a lie. */
function count(n: number | null | undefined): string {
  return n === null || n === undefined ? "—" : formatCount(n);
}

/** Every worker with what it did since it started (from its heartbeats). */
export function WorkersTable({ workers }: { workers: Worker[] }) {
  if (workers.length === 0) {
    return (
      <p className="muted small">
        No worker has reported in. Start one with <code>tasklens worker</code> (<code>./dev tasklens worker</code> in a
        checkout).
      </p>
    );
  }
  return (
    <div className="table-scroll">
      <table className="table">
        <thead>
          <tr>
            <th scope="col">Worker</th>
            <th scope="col">State</th>
            <th scope="col" title="Running now / tasks it runs at once">
              Running
            </th>
            <th scope="col" title="Since the worker started">
              Processed
            </th>
            <th scope="col" title="Since the worker started">
              Failed
            </th>
            <th scope="col">Uptime</th>
            <th scope="col">Last heartbeat</th>
          </tr>
        </thead>
        <tbody>
          {workers.map((w) => (
            <tr key={w.id} data-testid="worker-row">
              <td>
                <code>
                  {w.hostname}:{w.pid}
                </code>
                {w.queues.length > 0 && (
                  <div className="muted small" data-testid="worker-queues">
                    {w.queues.join(", ")}
                  </div>
                )}
              </td>
              <td>
                <span className={`pill ${w.online ? "status--success" : "status--failed"}`}>
                  {w.online ? "online" : "offline"}
                </span>
              </td>
              <td>
                {formatCount(w.running)}
                {w.concurrency !== null && w.concurrency !== undefined && ` / ${formatCount(w.concurrency)}`}
              </td>
              <td>{count(w.processed)}</td>
              <td className={w.failed ? "tone-bad" : undefined}>{count(w.failed)}</td>
              <td title={`since ${formatDateTime(w.started_at)}`}>{formatDuration(w.uptime_seconds * 1000)}</td>
              <td>{formatDateTime(w.last_seen)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
