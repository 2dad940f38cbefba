import { useState } from "react";
import { useDocumentTitle } from "@/lib/use-document-title";
import { Link, useParams, useSearchParams } from "react-router";
import { OperatorSignInLink, useCanOperate } from "@/features/auth";
import { formatAge } from "@/lib/format";
import {
  KINDS,
  PERIODS,
  useAnalysis,
  useSubmitAnalysis,
  type AnalysisKind,
  type AnalysisSubmitted,
  type AnalysisView,
  type Period,
} from "../api/analyses";
import { GithubReport } from "./github-report";
import { RefreshButton } from "./refresh-button";
import { RefreshHistoryPanel } from "./refresh-history";
import { RepositoryReport } from "./repository-report";
import { TaskProgress } from "./task-progress";

function isKind(value: string | undefined): value is AnalysisKind {
  return KINDS.some((k) => k.value === value);
}

function readPeriod(value: string | null): Period | undefined {
  return PERIODS.find((p) => p.value === value)?.value;
}

/** The seeds' notices: being updated, stale (with the way to refresh), and the cache's age. */
function Freshness({
  view,
  canOperate,
  onRefresh,
}: {
  view: AnalysisView;
  canOperate: boolean;
  onRefresh: (accepted: AnalysisSubmitted) => void;
}) {
  const [blockedUntil, setBlockedUntil] = useState<number | null>(null);
  const age = view.cache_age_seconds;
  return (
    <div className="freshness">
      {view.is_regenerating && view.result !== null && (
        <div className="card notice" role="status">
          <div className="notice__row">
            <span className="spinner" aria-hidden="true" />
            This report is being updated… The one below is still shown until the new one is ready.
          </div>
        </div>
      )}
      {view.is_stale && !view.is_regenerating && (
        <div className="card notice notice--warn" role="status">
          This report is out of date.
        </div>
      )}
      <div className="freshness__row">
        {age !== null && (
          <span className="muted small" data-testid="cache-age">
            Generated {formatAge(age)} ago
          </span>
        )}
        {!view.is_regenerating &&
          !view.failed_task_id &&
          (canOperate ? (
            <RefreshButton
              kind={view.kind}
              subject={view.subject}
              period={view.period}
              onStarted={onRefresh}
              blockedUntil={blockedUntil}
              onBlocked={setBlockedUntil}
            />
          ) : (
            <OperatorSignInLink to="refresh" />
          ))}
      </div>
    </div>
  );
}

export function AnalysisPage() {
  const params = useParams();
  const [search, setSearch] = useSearchParams();
  const canOperate = useCanOperate();
  const kind = params.kind;
  const subject = params["*"] ?? "";
  const period = readPeriod(search.get("period"));
  const valid = isKind(kind) && subject !== "";
  const view = useAnalysis(valid ? kind : "repository", subject, period);
  const run = useSubmitAnalysis();
  const [answered, setAnswered] = useState<"cached" | "deduplicated" | null>(null);

  useDocumentTitle(`${subject} · Analyses`);

  if (!valid) {
    return (
      <main className="page">
        <p role="alert" className="card placeholder placeholder--error">
          Not an analysis address. <Link to="/analyses">Back to analyses</Link>
        </p>
      </main>
    );
  }

  const data = view.data;
  // The run to show: the one regenerating it, else the one that failed (which reading never
  // starts again), else the one this page started.
  const taskId = data?.is_regenerating ? data.task_id : (data?.failed_task_id ?? search.get("task") ?? null);
  const followTask = (id: string) => {
    const next = new URLSearchParams(search);
    next.set("task", id);
    setSearch(next, { replace: true });
  };
  const follow = (accepted: AnalysisSubmitted) => {
    setAnswered(accepted.cached ? "cached" : accepted.deduplicated ? "deduplicated" : null);
    followTask(accepted.task_id);
  };

  return (
    <main className="page">
      <nav className="small" aria-label="Breadcrumb">
        <Link to="/analyses">Analyses</Link> / {KINDS.find((k) => k.value === kind)?.label}
      </nav>
      <div className="page__header">
        <h1 className="break-anywhere">{subject}</h1>
        <span className="muted">{PERIODS.find((p) => p.value === (data?.period ?? period))?.label}</span>
        {data?.task_id && (
          <Link className="small" to={`/tasks/${encodeURIComponent(data.task_id)}`}>
            Its task
          </Link>
        )}
      </div>
      {answered !== null && data && (
        <p className="card notice" role="status" data-testid="answered-from">
          {answered === "cached"
            ? `Showing the report from ${formatAge(data.cache_age_seconds ?? 0)} ago: it is fresh, nothing was run.`
            : "Already running: following that run."}
        </p>
      )}
      {taskId && (
        <TaskProgress
          key={taskId}
          taskId={taskId}
          taskName={`analysis.${kind}`}
          stillRunning={data?.is_regenerating === true && data.task_id === taskId}
          attemptsAllowed={data?.attempts_allowed ?? 1}
          canOperate={canOperate}
          onRetried={(id) => {
            setAnswered(null);
            followTask(id);
          }}
        />
      )}
      {view.isPending && (
        <p className="placeholder" role="status">
          Loading report…
        </p>
      )}
      {view.error && (
        <div className="card placeholder placeholder--error" role="alert">
          <p>Could not load the report: {view.error.message}</p>
          <button type="button" className="button" onClick={() => void view.refetch()}>
            Retry
          </button>
        </div>
      )}
      {data === null && (
        <div className="card placeholder">
          <p>No report yet.</p>
          {canOperate ? (
            <button
              type="button"
              className="button button--primary"
              disabled={run.isPending}
              onClick={() =>
                run.mutate(
                  { kind, subject, params: { period: period ?? null }, priority: "high", force: false },
                  { onSuccess: follow },
                )
              }
            >
              Run it now
            </button>
          ) : (
            <p>
              <OperatorSignInLink to="run it" />
            </p>
          )}
          {run.isError && <p className="error-text">{run.error.message}</p>}
        </div>
      )}
      {data && <Freshness view={data} canOperate={canOperate} onRefresh={follow} />}
      {data?.result &&
        (data.kind === "repository" ? (
          <RepositoryReport result={data.result} />
        ) : (
          <GithubReport result={data.result} />
        ))}
      {data?.result && <RefreshHistoryPanel kind={kind} subject={subject} period={period} canOperate={canOperate} />}
    </main>
  );
}
