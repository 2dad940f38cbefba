import { formatAge, formatDateTime, formatDuration } from "@/lib/format";
import { DataTable, type Column } from "@/components/data-table";
import { useRefreshHistory, type AnalysisKind, type Period, type RefreshHistory } from "../api/analyses";

const REFRESH_COLUMNS: Column<RefreshHistory["refreshes"][number]>[] = [
  { header: "Who", cell: (r) => r.requested_by },
  { header: "When", cell: (r) => formatDateTime(r.requested_at) },
  {
    header: "Outcome",
    cell: (r) => (
      <>
        {r.outcome}
        {r.deduplicated ? <span className="muted small"> (joined a running one)</span> : null}
      </>
    ),
  },
  { header: "Duration", cell: (r) => formatDuration(r.duration_ms) },
];

/** Who forced a refresh of this report, when, and how it went; and what the caller has left. */
export function RefreshHistoryPanel({
  kind,
  subject,
  period,
  canOperate,
}: {
  kind: AnalysisKind;
  subject: string;
  period: Period | undefined;
  canOperate: boolean;
}) {
  const history = useRefreshHistory(kind, subject, period);
  const data = history.data;
  if (history.error) {
    return (
      <p className="error-text small" role="alert">
        Could not load the refresh history: {history.error.message}
      </p>
    );
  }
  if (data === undefined) return null;
  return (
    <section className="card" aria-label="Refresh history" data-testid="refresh-history">
      <h2>Refresh history</h2>
      {canOperate && (
        <p className="muted small" data-testid="refreshes-left">
          {`${data.refreshes_left} of ${data.refresh_limit} forced refreshes left in this window (${formatAge(data.refresh_window_seconds)}).`}
        </p>
      )}
      {data.refreshes.length === 0 ? (
        <p className="muted small">Nobody has forced a refresh of this report.</p>
      ) : (
        <DataTable columns={REFRESH_COLUMNS} rows={data.refreshes} rowKey={(r) => `${r.task_id}-${r.requested_at}`} />
      )}
    </section>
  );
}
