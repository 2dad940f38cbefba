import { useQueryClient } from "@tanstack/react-query";
import { NavLink, Outlet } from "react-router";
import { AlertBanner } from "@/features/alerts";
import { useMe } from "@/features/auth";
import { clearToken } from "@/lib/token-store";
import { ConnectionStatus } from "@/features/live";
import { useTimeZone } from "@/lib/time-zone";
import { TimeZoneSwitch } from "./time-zone-switch";

/** Header + navigation around the signed-in pages. */
export function AppLayout() {
  const me = useMe();
  const queryClient = useQueryClient();
  // Keyed by the zone: switching it redraws every time on the page at once.
  const zone = useTimeZone();

  function signOut() {
    clearToken();
    queryClient.clear();
  }

  return (
    <div className="shell">
      <header className="topbar">
        <NavLink to="/monitoring" className="brand">
          TaskLens
        </NavLink>
        <nav className="topbar__nav" aria-label="Main">
          <NavLink to="/monitoring">Monitoring</NavLink>
          <NavLink to="/analyses">Analyses</NavLink>
          <NavLink to="/queues">Queues</NavLink>
          <NavLink to="/failures">Failures</NavLink>
          <NavLink to="/schedules">Schedules</NavLink>
          <NavLink to="/alerts">Alerts</NavLink>
          <NavLink to="/audit">Audit</NavLink>
        </nav>
        <div className="topbar__user">
          <ConnectionStatus />
          <TimeZoneSwitch />
          {me.data && (
            <span className="muted small" title={`Role: ${me.data.role}`}>
              {me.data.name} <span className="badge">{me.data.role}</span>
            </span>
          )}
          <button type="button" className="button button--ghost" onClick={signOut}>
            Sign out
          </button>
        </div>
      </header>
      <AlertBanner />
      <Outlet key={zone} />
    </div>
  );
}
