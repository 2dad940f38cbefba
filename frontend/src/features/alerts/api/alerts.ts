import { useQuery } from "@tanstack/react-query";
import { api, type Schemas, unwrap } from "@/lib/api-client";
import { alertsKeys } from "./keys";

export type AlertsResponse = Schemas["AlertsResponse"];
export type AlertFiring = Schemas["AlertFiringItem"];
export type AlertRulesResponse = Schemas["AlertRulesResponse"];
export type AlertRule = Schemas["AlertRuleItem"];

/** Polled more often than the server evaluates (15 s by default): the banner follows it. */
export const ALERTS_POLL_MS = 5_000;

/** What fires now and the latest firings (the banner reads `firing`). */
export function useAlerts() {
  return useQuery({
    queryKey: alertsKeys.firings(),
    queryFn: async ({ signal }): Promise<AlertsResponse> => {
      return unwrap(await api.GET("/api/v1/alerts", { signal }));
    },
    refetchInterval: ALERTS_POLL_MS,
  });
}

/** The rules in force with their state; webhooks by name and host only. */
export function useAlertRules() {
  return useQuery({
    queryKey: alertsKeys.rules(),
    queryFn: async ({ signal }): Promise<AlertRulesResponse> => {
      return unwrap(await api.GET("/api/v1/alerts/rules", { signal }));
    },
    refetchInterval: ALERTS_POLL_MS,
  });
}

/** A notification's link points at the server's public address; inside the SPA the
 * same page is reached by its path. */
export function dashboardPath(link: string): string {
  try {
    const url = new URL(link);
    return `${url.pathname}${url.search}`;
  } catch {
    return "/alerts";
  }
}

/** A rule's value in its own unit: a share as a percentage, ms and seconds as such. */
export function formatAlertValue(kind: string, value: number | null): string {
  if (value === null) return "—";
  switch (kind) {
    case "failure_rate":
      return `${(value * 100).toFixed(value < 0.1 ? 1 : 0)} %`;
    case "slow":
      return `${Math.round(value)} ms`;
    case "queue_age":
    case "no_workers":
    case "log_loss":
      return `${Math.round(value)} s`;
    default:
      return String(value);
  }
}
