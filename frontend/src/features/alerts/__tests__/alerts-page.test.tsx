import { screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { setToken } from "@/lib/token-store";
import { jsonResponse, renderApp, stubFetch } from "@/testing/utils";

const firing = {
  id: 7,
  rule: "flaky-failing",
  kind: "failure_rate",
  started_at: "2026-11-23T10:00:00Z",
  resolved_at: null,
  value: 0.8,
  peak: 0.9,
  threshold: 0.5,
  link: "http://tasklens.internal:8000/monitoring?status=failed&task_name=demo.flaky",
  notified: true,
  detail: { finished: 10, failed: 8 },
};
const resolved = {
  ...firing,
  id: 6,
  resolved_at: "2026-11-23T09:30:00Z",
  started_at: "2026-11-23T09:00:00Z",
  notified: false,
};

const rules = {
  configured: true,
  file_error: null,
  webhooks: { ops: "https://hooks.example/…" },
  rules: [
    {
      name: "flaky-failing",
      kind: "failure_rate",
      threshold: 0.5,
      unit: "share of finished runs that failed (0-1)",
      notify: ["ops"],
      cooldown_minutes: 10,
      params: { task_name: "demo.flaky", window_minutes: 5, min_runs: 5 },
      state: "firing",
      since: "2026-11-23T10:00:00Z",
      value: 0.8,
    },
    {
      name: "nobody",
      kind: "no_workers",
      threshold: 60,
      unit: "seconds without a worker online",
      notify: [],
      cooldown_minutes: 10,
      params: {},
      state: "ok",
      since: null,
      value: null,
    },
  ],
};

function api(alerts: { firing: unknown[]; history: unknown[] }) {
  return (url: URL) => {
    if (url.pathname === "/api/v1/me") return jsonResponse({ name: "bob", role: "viewer" });
    if (url.pathname === "/api/v1/alerts") return jsonResponse({ configured: true, ...alerts });
    if (url.pathname === "/api/v1/alerts/rules") return jsonResponse(rules);
    if (url.pathname === "/api/v1/queues") return jsonResponse({ queues: [], workers: [] });
  };
}

describe("alerts", () => {
  it("shows a banner on any page while a rule fires, linking to what it measures", async () => {
    setToken("t");
    stubFetch(api({ firing: [firing], history: [firing] }));
    renderApp("/queues");
    const banner = await screen.findByTestId("alert-banner");
    expect(banner).toHaveTextContent("1 alert firing");
    expect(banner).toHaveTextContent("failure_rate 80 % > 50 %");
    const link = within(banner).getByRole("link", { name: "flaky-failing" });
    expect(link).toHaveAttribute("href", "/monitoring?status=failed&task_name=demo.flaky");
    expect(within(banner).getByRole("link", { name: "All alerts" })).toHaveAttribute("href", "/alerts");
  });

  it("shows no banner when nothing fires", async () => {
    setToken("t");
    stubFetch(api({ firing: [], history: [resolved] }));
    renderApp("/queues");
    await screen.findByRole("heading", { name: "Queues" });
    expect(screen.queryByTestId("alert-banner")).not.toBeInTheDocument();
  });

  it("lists the rules with their state and webhooks' hosts, and the history of firings", async () => {
    setToken("t");
    stubFetch(api({ firing: [firing], history: [firing, resolved] }));
    renderApp("/alerts");
    const rows = await screen.findAllByTestId("alert-rule-row");
    expect(rows).toHaveLength(2);
    expect(rows[0]).toHaveTextContent("flaky-failing");
    expect(rows[0]).toHaveTextContent("firing");
    expect(rows[0]).toHaveTextContent("ops (https://hooks.example/…)");
    expect(rows[0]).toHaveTextContent("task_name=demo.flaky");
    expect(rows[1]).toHaveTextContent("ok");
    const firings = await screen.findAllByTestId("alert-firing-row");
    expect(firings).toHaveLength(2);
    expect(firings[0]).toHaveTextContent("firing");
    expect(firings[1]).toHaveTextContent("no (cooldown)");
    expect(document.title).toBe("Alerts · TaskLens");
  });
});
