import { Link } from "react-router";
import { RelativeTime } from "@/components/time";
import { useDocumentTitle } from "@/lib/use-document-title";
import { dashboardPath, formatAlertValue, useAlertRules, useAlerts, type AlertRule } from "../api/alerts";

const TITLE = "Alerts";

function params(rule: AlertRule): string {
  return Object.entries(rule.params)
    .filter(([, v]) => v !== null)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(", ");
}

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
      <div className="table-scroll">
        <table className="table">
          <thead>
            <tr>
              <th scope="col">Rule</th>
              <th scope="col">State</th>
              <th scope="col">Kind</th>
              <th scope="col">Threshold</th>
              <th scope="col">Notifies</th>
            </tr>
          </thead>
          <tbody>
            {data.rules.map((rule) => (
              <tr key={rule.name} data-testid="alert-rule-row">
                <td>
                  {rule.name} <span className="muted small">{params(rule)}</span>
                </td>
                <td>
                  <span className={`pill ${rule.state === "firing" ? "status--failed" : "status--success"}`}>
                    {rule.state}
                  </span>{" "}
                  {rule.since && (
                    <span className="small">
                      {formatAlertValue(rule.kind, rule.value)} since <RelativeTime iso={rule.since} />
                    </span>
                  )}
                </td>
                <td>{rule.kind}</td>
                <td title={rule.unit}>{formatAlertValue(rule.kind, rule.threshold)}</td>
                <td className="small">
                  {rule.notify.map((name) => `${name} (${data.webhooks[name] ?? "?"})`).join(", ") || "—"}
                  {rule.notify.length > 0 && <span className="muted"> · cooldown {rule.cooldown_minutes} min</span>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
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
        <div className="table-scroll">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Rule</th>
                <th scope="col">Started</th>
                <th scope="col">Resolved</th>
                <th scope="col">Peak</th>
                <th scope="col">Notified</th>
              </tr>
            </thead>
            <tbody>
              {data.history.map((f) => (
                <tr key={f.id} data-testid="alert-firing-row">
                  <td>
                    <Link to={dashboardPath(f.link)}>{f.rule}</Link> <span className="muted small">{f.kind}</span>
                  </td>
                  <td>
                    <RelativeTime iso={f.started_at} />
                  </td>
                  <td>
                    {f.resolved_at ? (
                      <RelativeTime iso={f.resolved_at} />
                    ) : (
                      <span className="pill status--failed">firing</span>
                    )}
                  </td>
                  <td>{formatAlertValue(f.kind, f.peak)}</td>
                  <td className="small">{f.notified ? "yes" : "no (cooldown)"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
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
