import { useState } from "react";
import { Link } from "react-router";
import { DataTable, type Column } from "@/components/data-table";
import { RelativeTime } from "@/components/time";
import { useDocumentTitle } from "@/lib/use-document-title";
import { AUDIT_ACTIONS, type AuditActionFilter, type AuditItem, useAudit } from "../api/audit";

const TASK_ACTIONS = new Set(["retry", "cancel"]);

/** The status colours: ok as success, a refusal as cancelled (nothing happened), else failed. */
function outcomeClass(outcome: string): string {
  if (outcome === "ok") return "pill status--success";
  if (outcome.startsWith("refused")) return "pill status--cancelled";
  return "pill status--failed";
}

function Target({ entry }: { entry: AuditItem }) {
  if (TASK_ACTIONS.has(entry.action)) {
    return <Link to={`/tasks/${encodeURIComponent(entry.target)}`}>{entry.target}</Link>;
  }
  return <code>{entry.target}</code>;
}

function Detail({ detail }: { detail: AuditItem["detail"] }) {
  if (!detail) return null;
  return (
    <span className="muted small">
      {Object.entries(detail).map(([key, value]) => (
        <span key={key}>
          {" · "}
          {key.replaceAll("_", " ")}:{" "}
          {key.endsWith("task_id") ? <Link to={`/tasks/${encodeURIComponent(String(value))}`}>{value}</Link> : value}
        </span>
      ))}
    </span>
  );
}

const AUDIT_COLUMNS: Column<AuditItem>[] = [
  { header: "When", cell: (entry) => <RelativeTime iso={entry.at} /> },
  { header: "Who", cell: (entry) => entry.actor },
  { header: "Action", cell: (entry) => entry.action.replaceAll("_", " ") },
  {
    header: "Target",
    cell: (entry) => (
      <>
        <Target entry={entry} />
        <Detail detail={entry.detail} />
      </>
    ),
  },
  { header: "Count", cell: (entry) => entry.count },
  { header: "Outcome", cell: (entry) => <span className={outcomeClass(entry.outcome)}>{entry.outcome}</span> },
];

/** Every operator action: who, when, what, how many and how it ended. Read-only for everyone. */
export function AuditPage() {
  useDocumentTitle("Audit log");
  const [action, setAction] = useState<AuditActionFilter>("");
  const audit = useAudit(action);
  const entries = audit.data?.pages.flatMap((page) => page.items) ?? [];

  return (
    <main className="page">
      <header className="page__header">
        <h1>Audit log</h1>
        <label className="field">
          Action
          <select value={action} onChange={(event) => setAction(event.target.value as AuditActionFilter)}>
            <option value="">all</option>
            {AUDIT_ACTIONS.map((name) => (
              <option key={name} value={name}>
                {name.replaceAll("_", " ")}
              </option>
            ))}
          </select>
        </label>
      </header>
      <p className="muted small">
        Retries, cancels, purges, pauses, dismissals, forced refreshes and token changes, newest first. Nobody can edit
        or delete an entry.
      </p>
      {audit.error !== null && (
        <p className="error-text" role="alert">
          Could not load the audit log: {audit.error.message}
        </p>
      )}
      {audit.isPending && <p className="placeholder">Loading…</p>}
      {!audit.isPending && entries.length === 0 && audit.error === null && (
        <p className="placeholder">
          No operator action {action === "" ? "yet" : "of this kind yet"}. Retrying or cancelling a task, pausing a
          queue or creating a token (<code>tasklens token --name NAME</code>) is recorded here.
        </p>
      )}
      {entries.length > 0 && (
        <DataTable columns={AUDIT_COLUMNS} rows={entries} rowKey={(entry) => entry.id} label="Audit log" />
      )}
      {audit.hasNextPage && (
        <button
          type="button"
          className="button button--ghost"
          disabled={audit.isFetchingNextPage}
          onClick={() => void audit.fetchNextPage()}
        >
          {audit.isFetchingNextPage ? "Loading…" : "Older entries"}
        </button>
      )}
    </main>
  );
}
