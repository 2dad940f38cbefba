import { useDocumentTitle } from "@/lib/use-document-title";
import { DataTable, type Column } from "@/components/data-table";
import { OperatorSignInLink, useCanOperate } from "@/features/auth";
import { formatCount, formatDateTime } from "@/lib/format";
import { isQueueName, useQueues } from "../api/queues";
import { DemoForm } from "./demo-form";
import { QueueControls } from "./queue-controls";
import { TaskList } from "./task-list";

type QueuesView = NonNullable<ReturnType<typeof useQueues>["data"]>;

type Queue = QueuesView["queues"][number];

/** The queues' columns; operators get the pause / resume / purge controls too. */
function queueColumns(canOperate: boolean): Column<Queue>[] {
  const columns: Column<Queue>[] = [
    {
      header: "Priority",
      cell: (q) => (
        <>
          {q.name} <span className="muted small">{q.stream}</span>
        </>
      ),
    },
    { header: "Waiting", cell: (q) => formatCount(q.depth) },
    { header: "In flight", cell: (q) => formatCount(q.in_flight) },
    {
      header: "State",
      cell: (q) => (
        <span className={`pill ${q.paused ? "status--pending" : "status--success"}`}>
          {q.paused ? "paused" : "active"}
        </span>
      ),
    },
  ];
  if (canOperate)
    columns.push({
      header: "Actions",
      cell: (q) => isQueueName(q.name) && <QueueControls queue={q.name} paused={q.paused} waiting={q.depth} />,
    });
  return columns;
}

const WORKER_COLUMNS: Column<QueuesView["workers"][number]>[] = [
  {
    header: "Worker",
    cell: (w) => (
      <code>
        {w.hostname}:{w.pid}
      </code>
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
  { header: "Running", cell: (w) => w.running },
  { header: "Last heartbeat", cell: (w) => formatDateTime(w.last_seen) },
];

function QueuesAndWorkers({ canOperate }: { canOperate: boolean }) {
  const { data, error, refetch } = useQueues();
  if (data === undefined) {
    return error ? (
      <div className="card placeholder placeholder--error" role="alert">
        <p>Could not load queues: {error.message}</p>
        <button type="button" className="button" onClick={() => void refetch()}>
          Retry
        </button>
      </div>
    ) : (
      <p className="placeholder" role="status">
        Loading queues…
      </p>
    );
  }
  return (
    <div className="two-columns">
      <section className="card" aria-labelledby="queues-title">
        <h2 id="queues-title">Queues</h2>
        <DataTable
          columns={queueColumns(canOperate)}
          rows={data.queues}
          rowKey={(q) => q.stream}
          rowTestId="queue-row"
          label="Queues"
        />
      </section>
      <section className="card" aria-labelledby="workers-title">
        <h2 id="workers-title">Workers</h2>
        {data.workers.length === 0 ? (
          <p className="muted small">
            No worker has reported in. Start one with <code>tasklens worker</code> (<code>./dev tasklens worker</code>{" "}
            in a checkout).
          </p>
        ) : (
          <DataTable
            columns={WORKER_COLUMNS}
            rows={data.workers}
            rowKey={(w) => w.id}
            rowTestId="worker-row"
            label="Workers"
          />
        )}
      </section>
    </div>
  );
}

export function QueuesPage() {
  const canOperate = useCanOperate();
  useDocumentTitle("Queues");
  return (
    <main className="page">
      <div className="page__header">
        <h1>Queues and workers</h1>
        {!canOperate && <OperatorSignInLink to="pause queues, queue demo tasks, cancel or retry" />}
      </div>
      <QueuesAndWorkers canOperate={canOperate} />
      {canOperate && <DemoForm />}
      <div className="two-columns">
        <TaskList status="running" title="Running" canOperate={canOperate} />
        <TaskList status="pending" title="Pending" canOperate={canOperate} />
      </div>
      <TaskList status="failed" title="Recently failed" canOperate={canOperate} />
    </main>
  );
}
