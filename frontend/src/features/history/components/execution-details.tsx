import { Link } from "react-router";
import type { TaskLogItem } from "../api/get-history";
import { CodeBlock } from "@/components/code-block";
import { MetaRow } from "@/components/meta-row";
import { formatJson } from "@/lib/format";

/** What an expanded history row shows: ids, params, result, and the full traceback. */
export function ExecutionDetails({ item }: { item: TaskLogItem }) {
  return (
    <div className="details">
      <dl className="details__meta">
        <MetaRow label="Task id">
          <Link to={`/tasks/${encodeURIComponent(item.task_id)}`}>
            <code>{item.task_id}</code>
          </Link>
        </MetaRow>
        <MetaRow label="Queue">{item.queue}</MetaRow>
        <MetaRow label="Worker">{item.worker}</MetaRow>
        {item.progress_message && <MetaRow label="Progress">{item.progress_message}</MetaRow>}
      </dl>
      <CodeBlock title="Params" text={formatJson(item.params)} level={4} />
      {item.result !== null && <CodeBlock title="Result" text={formatJson(item.result)} level={4} />}
      {item.error_traceback && (
        <CodeBlock title="Traceback" text={item.error_traceback} testId="traceback" error level={4} />
      )}
    </div>
  );
}
