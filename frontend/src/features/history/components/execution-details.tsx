import { Link } from "react-router";
import type { TaskLogItem } from "../api/get-history";
import { CopyButton } from "@/components/copy-button";

function pretty(value: unknown): string {
  return value === undefined ? "null" : JSON.stringify(value, null, 2);
}

/** What an expanded history row shows: ids, params, result, and the full traceback. */
export function ExecutionDetails({ item }: { item: TaskLogItem }) {
  return (
    <div className="details">
      <dl className="details__meta">
        <div>
          <dt>Task id</dt>
          <dd>
            <Link to={`/tasks/${encodeURIComponent(item.task_id)}`}>
              <code>{item.task_id}</code>
            </Link>
          </dd>
        </div>
        <div>
          <dt>Queue</dt>
          <dd>{item.queue ?? "—"}</dd>
        </div>
        <div>
          <dt>Worker</dt>
          <dd>{item.worker ?? "—"}</dd>
        </div>
        {item.progress_message && (
          <div>
            <dt>Progress</dt>
            <dd>{item.progress_message}</dd>
          </div>
        )}
      </dl>
      <section>
        <h4>Params</h4>
        <pre className="code">{pretty(item.params)}</pre>
      </section>
      {item.result !== null && (
        <section>
          <h4>Result</h4>
          <pre className="code">{pretty(item.result)}</pre>
        </section>
      )}
      {item.error_traceback && (
        <section>
          <div className="details__heading">
            <h4>Traceback</h4>
            <CopyButton text={item.error_traceback} label="Copy traceback" />
          </div>
          <pre className="code code--error" data-testid="traceback">
            {item.error_traceback}
          </pre>
        </section>
      )}
    </div>
  );
}
