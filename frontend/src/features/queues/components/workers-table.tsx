import type { QueuesResponse } from "../api/queues";
import { DataTable, type Column } from "@/components/data-table";
import { formatCount, formatDateTime, formatDuration } from "@/lib/format";

type Worker = QueuesResponse["workers"][number];

/** A count a worker too old to report it leaves out: a dash, not a 0 that would be a lie. */
function count(n: number | null | undefined): string {
  return n === null || n === undefined ? "—" : formatCount(n);
}

const COLUMNS: Column<Worker>[] = [
  {
    header: "Worker",
    cell: (w) => (
      <>
        <code>
          {w.hostname}:{w.pid}
        </code>
        {w.queues.length > 0 && (
          <div className="muted small" data-testid="worker-queues">
            {w.queues.join(", ")}
          </div>
        )}
      </>
    ),
  },
  {
    header: "State",
    cell: (w) => (
      <span className={`pill ${w.online ? "status--success" : "status--failed"}`}>
        {w.online ? "online" : "offline"}
      </span>
    ),
  },
  {
    header: "Running",
    cell: (w) =>
      w.concurrency === null || w.concurrency === undefined
        ? formatCount(w.running)
        : `${formatCount(w.running)} / ${formatCount(w.concurrency)}`,
    title: () => "Running now / tasks it runs at once",
  },
  { header: "Processed", cell: (w) => count(w.processed), title: () => "Since the worker started" },
  {
    header: "Failed",
    cell: (w) => (w.failed ? <span className="tone-bad">{count(w.failed)}</span> : count(w.failed)),
    title: () => "Since the worker started",
  },
  {
    header: "Uptime",
    cell: (w) => formatDuration(w.uptime_seconds * 1000),
    title: (w) => `since ${formatDateTime(w.started_at)}`,
  },
  { header: "Last heartbeat", cell: (w) => formatDateTime(w.last_seen) },
];

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
  return <DataTable columns={COLUMNS} rows={workers} rowKey={(w) => w.id} rowTestId="worker-row" label="Workers" />;
}
