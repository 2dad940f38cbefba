import { useState } from "react";
import { LoadState } from "@/components/load-state";
import { Link, useSearchParams } from "react-router";
import { useCanOperate } from "@/features/auth";
import { RelativeTime } from "@/components/time";
import { formatCount, formatCountOf } from "@/lib/format";
import { useDocumentTitle } from "@/lib/use-document-title";
import { useFailures, type FailureGroup } from "../api/failures";
import { BulkFailureAction } from "./bulk-failure-action";
import { Sparkline } from "./sparkline";

const WINDOWS = { 1: "Last hour", 24: "Last 24 hours", 168: "Last 7 days", 720: "Last 30 days" } as const;
type WindowHours = keyof typeof WINDOWS;

function readWindow(params: URLSearchParams): WindowHours {
  const n = Number(params.get("window"));
  return n in WINDOWS ? (n as WindowHours) : 24;
}

function Group({
  group,
  windowHours,
  canOperate,
  onDone,
}: {
  group: FailureGroup;
  windowHours: number;
  canOperate: boolean;
  onDone: (outcome: string) => void;
}) {
  const [open, setOpen] = useState(false);
  const title = group.exception_type ? `${group.exception_type}: ${group.message}` : group.message;
  const history = `/monitoring?status=failed&fingerprint=${group.fingerprint}`;
  return (
    <li className="card failure-group" data-testid="failure-group">
      <header className="card__header">
        <h2 className="failure-group__title">
          <Link to={history}>{title || "(no message)"}</Link>
        </h2>
        <Sparkline values={group.trend} label={`${formatCountOf(group.count, "failure")} per hour, oldest first`} />
      </header>
      <p className="small muted">
        <strong data-testid="failure-count">{formatCountOf(group.count, "failure")}</strong> ·{" "}
        {formatCountOf(group.tasks, "task")} · {group.task_names.join(", ")}
        {group.frame && (
          <>
            {" "}
            · <code>{group.frame}</code>
          </>
        )}{" "}
        · last <RelativeTime iso={group.last_seen} /> · first <RelativeTime iso={group.first_seen} />
      </p>
      <div className="failure-group__actions">
        <Link className="small" to={history}>
          history
        </Link>
        <button type="button" className="button button--small button--ghost" onClick={() => setOpen(!open)}>
          {open ? "Hide traceback" : "Sample traceback"}
        </button>
        {canOperate && (
          <>
            <BulkFailureAction
              target={{ fingerprint: group.fingerprint, windowHours }}
              action="retry"
              onDone={onDone}
            />
            <BulkFailureAction
              target={{ fingerprint: group.fingerprint, windowHours }}
              action="dismiss"
              onDone={onDone}
            />
          </>
        )}
      </div>
      {open && (
        <pre className="traceback" aria-label="Sample traceback">
          {group.sample_traceback ?? group.sample_error_message ?? "No traceback was logged."}
        </pre>
      )}
    </li>
  );
}

/** Failed attempts grouped by what went wrong, the group that failed most recently first. */
export function FailuresPage() {
  useDocumentTitle("Failures");
  const [params, setParams] = useSearchParams();
  const windowHours = readWindow(params);
  const canOperate = useCanOperate();
  const { data, error, refetch } = useFailures(windowHours);
  const [notice, setNotice] = useState<string | null>(null);

  return (
    <main className="page">
      <div className="page__header">
        <h1>Failures</h1>
        <label className="field">
          <span>Window</span>
          <select
            value={windowHours}
            onChange={(e) => {
              const next = new URLSearchParams(params);
              next.set("window", e.target.value);
              setParams(next);
            }}
          >
            {Object.entries(WINDOWS).map(([hours, label]) => (
              <option key={hours} value={hours}>
                {label}
              </option>
            ))}
          </select>
        </label>
      </div>
      {notice !== null && (
        <p className="card small" role="status" data-testid="failures-notice">
          {notice}
        </p>
      )}
      {data === undefined && <LoadState what="failures" error={error} onRetry={() => void refetch()} />}
      {data !== undefined && (
        <>
          <p className="muted small">
            {formatCountOf(data.group_count, "group")} from {formatCountOf(data.scanned, "failed attempt")}
            {data.truncated && " (the window's oldest failures were not read)"}
            {data.group_count > data.groups.length && `; the newest ${formatCount(data.groups.length)} shown`}
          </p>
          {data.groups.length === 0 ? (
            <p className="card placeholder">No failures in this window.</p>
          ) : (
            <ul className="failure-groups" aria-label="Failure groups">
              {data.groups.map((g) => (
                <Group
                  key={g.fingerprint}
                  group={g}
                  windowHours={windowHours}
                  canOperate={canOperate}
                  onDone={(outcome) => setNotice(`${outcome} (${g.exception_type || "error"}: ${g.message})`)}
                />
              ))}
            </ul>
          )}
        </>
      )}
    </main>
  );
}
