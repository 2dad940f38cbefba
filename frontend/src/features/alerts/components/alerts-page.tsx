import { Link } from "react-router";
import { DataTable, type Column } from "@/components/data-table";
import { RelativeTime } from "@/components/time";
import { useDocumentTitle } from "@/lib/use-document-title";
import {
  dashboardPath,
  formatAlertValue,
  useAlertRules,
  useAlerts,
  type AlertFiring,
  type AlertRule,
} from "../api/alerts";

const TITLE = "Alerts";

function params(rule: AlertRule): string {
  return Object.entries(rule.params)
    .filter(([, v]) => v !== null)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(", ");
}

function ruleColumns(webhooks: Record<string, string>): Column<AlertRule>[] {
  return [
    {
      header: "Rule",
      cell: (rule) => (
        <>
          {rule.name} <span className="muted small">{params(rule)}</span>
        </>
      ),
    },
    {
      header: "State",
      cell: (rule) => (
        <>
          <span className={`pill ${rule.state === "firing" ? "status--failed" : "status--success"}`}>{rule.state}</span>{" "}
          {rule.since && (
            <span className="small">
              {formatAlertValue(rule.kind, rule.value)} since <RelativeTime iso={rule.since} />
            </span>
          )}
        </>
      ),
    },
    { header: "Kind", cell: (rule) => rule.kind },
    { header: "Threshold", cell: (rule) => formatAlertValue(rule.kind, rule.threshold), title: (rule) => rule.unit },
    {
      header: "Notifies",
      className: "small",
      cell: (rule) => (
        <>
          {rule.notify.map((name) => `${name} (${webhooks[name] ?? "?"})`).join(", ") || "—"}
          {rule.notify.length > 0 && <span className="muted"> · cooldown {rule.cooldown_minutes} min</span>}
        </>
      ),
    },
  ];
}

const FIRING_COLUMNS: Column<AlertFiring>[] = [
  {
    header: "Rule",
    cell: (f) => (
      <>
        <Link to={dashboardPath(f.link)}>{f.rule}</Link> <span className="muted small">{f.kind}</span>
      </>
    ),
  },
  { header: "Started", cell: (f) => <RelativeTime iso={f.started_at} /> },
  {
    header: "Resolved",
    cell: (f) =>
      f.resolved_at ? <RelativeTime iso={f.resolved_at} /> : <span className="pill status--failed">firing</span>,
  },
  { header: "Peak", cell: (f) => formatAlertValue(f.kind, f.peak) },
  { header: "Notified", className: "small", cell: (f) => (f.notified ? "yes" : "no (cooldown)") },
];

function Rules() {
  const { data, error } = useAlertRules();
  if (data === undefined) {
    return error ? (
      <p className="card placeholder placeholder--error" role="alert">
        Could not load the alert rules: {error.message}
      </p>
    ) : (
      <p className="placeholder" role="status">
        Loading rules…
      </p>
    );
  }
  if (!data.configured) {
    return (
      <section className="card">
        <h2>Rules</h2>
        <p className="muted">
          No alert rules: set <code>TASKLENS_ALERTS_FILE</code> to a JSON file of rules and webhooks (see the README).
        </p>
      </section>
    );
  }
  return (
    <section className="card" aria-labelledby="rules-title">
      <h2 id="rules-title">Rules</h2>
      {data.file_error && (
        <p className="placeholder--error" role="alert">
          The latest edit of the alerts file is not applied (the last good rules are): {data.file_error}
        </p>
      )}
      <DataTable
        columns={ruleColumns(data.webhooks)}
        rows={data.rules}
        rowKey={(rule) => rule.name}
        rowTestId="alert-rule-row"
        label="Alert rules"
      />
    </section>
  );
}

function History() {
  const { data, error } = useAlerts();
  if (data === undefined) {
    return error ? (
      <p className="card placeholder placeholder--error" role="alert">
        Could not load the firings: {error.message}
      </p>
    ) : null;
  }
  return (
    <section className="card" aria-labelledby="firings-title">
      <h2 id="firings-title">Firings</h2>
      {data.history.length === 0 ? (
        <p className="muted small">No alert has fired.</p>
      ) : (
        <DataTable
          columns={FIRING_COLUMNS}
          rows={data.history}
          rowKey={(f) => f.id}
          rowTestId="alert-firing-row"
          label="Alert firings"
        />
      )}
    </section>
  );
}

export function AlertsPage() {
  useDocumentTitle(TITLE);
  return (
    <main className="page">
      <div className="page__header">
        <h1>{TITLE}</h1>
      </div>
      <Rules />
      <History />
    </main>
  );
}
