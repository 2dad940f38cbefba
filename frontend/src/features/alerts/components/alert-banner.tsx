import { Link } from "react-router";
import { RelativeTime } from "@/components/time";
import { dashboardPath, formatAlertValue, useAlerts } from "../api/alerts";

/** On every signed-in page while an alert fires: which, since when, and where to look.
 * Silent when alerts cannot be read (an older server, a blip): a banner must not cry wolf. */
export function AlertBanner() {
  const { data } = useAlerts();
  const firing = data?.firing ?? [];
  if (firing.length === 0) return null;
  return (
    <div className="alert-banner" role="alert" data-testid="alert-banner">
      <strong>{firing.length === 1 ? "1 alert firing" : `${String(firing.length)} alerts firing`}:</strong>
      <ul className="alert-banner__list">
        {firing.map((f) => (
          <li key={f.id}>
            <Link to={dashboardPath(f.link)}>{f.rule}</Link>{" "}
            <span className="small">
              {f.kind} {formatAlertValue(f.kind, f.value)} &gt; {formatAlertValue(f.kind, f.threshold)}, since{" "}
              <RelativeTime iso={f.started_at} />
            </span>
          </li>
        ))}
      </ul>
      <Link to="/alerts" className="alert-banner__more">
        All alerts
      </Link>
    </div>
  );
}
