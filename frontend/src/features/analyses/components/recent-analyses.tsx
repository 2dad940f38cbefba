import { Link } from "react-router";
import { useCanOperate } from "@/features/auth";
import { formatAge } from "@/lib/format";
import { KINDS, PERIODS, useRecentAnalyses } from "../api/analyses";
import { analysisPath } from "../validation";

const kindLabel = (kind: string) => KINDS.find((k) => k.value === kind)?.label ?? kind;
const periodLabel = (period: string) => PERIODS.find((p) => p.value === period)?.label ?? period;

export function RecentAnalyses() {
  const { data, error, refetch } = useRecentAnalyses();
  const canOperate = useCanOperate();
  return (
    <section className="card" aria-labelledby="recent-title">
      <h2 id="recent-title">Recent reports</h2>
      {error !== null && (
        <p className="error-text" role="alert">
          Could not load reports: {error.message}{" "}
          <button type="button" className="button button--small" onClick={() => void refetch()}>
            Retry
          </button>
        </p>
      )}
      {data === undefined && error === null && <p className="placeholder">Loading…</p>}
      {data?.length === 0 && (
        <p className="muted small">
          {canOperate ? "No reports yet: start one above." : "No reports yet: an operator starts them."}
        </p>
      )}
      {data !== undefined && data.length > 0 && (
        <ul className="task-list">
          {data.map((item) => (
            <li key={`${item.kind}:${item.subject}:${item.period}`} className="task-list__item">
              <div>
                <Link to={analysisPath(item.kind, item.subject, item.period)}>{item.subject}</Link>{" "}
                <span className="muted small">
                  {kindLabel(item.kind)} · {periodLabel(item.period)} · {formatAge(item.cache_age_seconds)} old
                </span>
              </div>
              {item.is_stale && <span className="pill status--cancelled">stale</span>}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
