import { useDocumentTitle } from "@/lib/use-document-title";
import { useCanOperate } from "@/features/auth";
import { formatCount, formatDateTime } from "@/lib/format";
import { isQueueName, useQueues } from "../api/queues";
import { DemoForm } from "./demo-form";
import { QueueControls } from "./queue-controls";
import { TaskList } from "./task-list";

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
        <div className="table-scroll">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Priority</th>
                <th scope="col">Waiting</th>
                <th scope="col">In flight</th>
                <th scope="col">State</th>
                {canOperate && <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {data.queues.map((q) => (
                <tr key={q.stream} data-testid="queue-row">
                  <td>
                    {q.name} <span className="muted small">{q.stream}</span>
                  </td>
                  <td>{formatCount(q.depth)}</td>
                  <td>{formatCount(q.in_flight)}</td>
                  <td>
                    <span className={`pill ${q.paused ? "status--pending" : "status--success"}`}>
                      {q.paused ? "paused" : "active"}
                    </span>
                  </td>
                  {canOperate && (
                    <td>
                      {isQueueName(q.name) && <QueueControls queue={q.name} paused={q.paused} waiting={q.depth} />}
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
      <section className="card" aria-labelledby="workers-title">
        <h2 id="workers-title">Workers</h2>
        {data.workers.length === 0 ? (
          <p className="muted small">
            No worker has reported in. Start one with <code>tasklens worker</code> (<code>./dev tasklens worker</code>{" "}
            in a checkout).
          </p>
        ) : (
          <div className="table-scroll">
            <table className="table">
              <thead>
                <tr>
                  <th scope="col">Worker</th>
                  <th scope="col">State</th>
                  <th scope="col">Running</th>
                  <th scope="col">Last heartbeat</th>
                </tr>
              </thead>
              <tbody>
                {data.workers.map((w) => (
                  <tr key={w.id} data-testid="worker-row">
                    <td>
                      <code>
                        {w.hostname}:{w.pid}
                      </code>
                    </td>
                    <td>
                      <span className={`pill ${w.online ? "status--success" : "status--failed"}`}>
                        {w.online ? "online" : "offline"}
                      </span>
                    </td>
                    <td>{w.running}</td>
                    <td>{formatDateTime(w.last_seen)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
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
