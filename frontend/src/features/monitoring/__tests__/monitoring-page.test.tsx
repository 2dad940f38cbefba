import { screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { getToken, setToken } from "@/lib/token-store";
import { jsonResponse, renderApp, stubFetch } from "@/testing/utils";
import { dashboardApi, metricsResponse } from "@/testing/fixtures";

describe("MonitoringPage", () => {
  it("fetches metrics with the stored token and shows a card per task", async () => {
    setToken("secret-1");
    const { requests } = stubFetch(dashboardApi());

    renderApp("/monitoring");

    expect(screen.getByRole("heading", { level: 1, name: "Background Task Monitoring" })).toBeInTheDocument();
    expect(screen.getByText("Loading metrics…")).toBeInTheDocument();

    const card = await screen.findByRole("article", { name: "reports.build" });
    expect(within(card).getByText("1,180")).toBeInTheDocument();
    expect(screen.getAllByRole("article")).toHaveLength(2);
    expect(await screen.findByText("alice")).toBeInTheDocument();
    expect(document.title).toBe("Background Task Monitoring · TaskLens");

    const metricsRequest = requests.find((r) => new URL(r.url).pathname === "/api/v1/monitoring/metrics");
    expect(metricsRequest).toBeDefined();
    expect(new URL(metricsRequest!.url).searchParams.get("time_window")).toBe("24");
    expect(metricsRequest!.headers.get("Authorization")).toBe("Bearer secret-1");
  });

  it("redirects / to /monitoring", async () => {
    setToken("secret-1");
    stubFetch(dashboardApi({ "/api/v1/monitoring/metrics": () => jsonResponse({ ...metricsResponse, metrics: [] }) }));
    renderApp("/");
    expect(await screen.findByText("No task executions in the last 24 hours.")).toBeInTheDocument();
    expect(window.location.pathname).toBe("/monitoring");
  });

  it("shows an error state with the server's message", async () => {
    setToken("secret-1");
    stubFetch(dashboardApi({ "/api/v1/monitoring/metrics": () => jsonResponse({ error: "database is down" }, 503) }));
    renderApp("/monitoring");
    const alert = await screen.findByText(/Could not load metrics/);
    expect(alert).toHaveTextContent("Could not load metrics (HTTP 503): database is down");
    expect(within(alert.parentElement!).getByRole("button", { name: "Retry" })).toBeInTheDocument();
  });

  it("on a 401 clears the token and sends the user to sign-in", async () => {
    setToken("expired");
    stubFetch((url) => {
      if (url.pathname.startsWith("/api/")) return jsonResponse({ error: "invalid token" }, 401);
    });
    renderApp("/monitoring");
    expect(await screen.findByRole("heading", { name: "Sign in to TaskLens" })).toBeInTheDocument();
    expect(getToken()).toBeNull();
    expect(window.location.pathname).toBe("/sign-in");
  });

  it("sends a signed-out visitor to sign-in without calling the API", async () => {
    const { fetchMock } = stubFetch(() => undefined);
    renderApp("/monitoring");
    expect(await screen.findByRole("heading", { name: "Sign in to TaskLens" })).toBeInTheDocument();
    expect(fetchMock).not.toHaveBeenCalled();
  });

  it("shows a not-found page for unknown routes, inside the app's header and navigation", async () => {
    setToken("secret-1");
    stubFetch(dashboardApi());
    renderApp("/no/such/page");
    expect(screen.getByRole("heading", { name: "Page not found" })).toBeInTheDocument();
    expect(screen.getByText("/no/such/page")).toBeInTheDocument();
    const nav = screen.getByRole("navigation", { name: "Main" });
    expect(within(nav).getByRole("link", { name: "Queues" })).toBeInTheDocument();
    expect(await screen.findByText("alice")).toBeInTheDocument();
  });

  it("tells a new user how to get numbers, without markdown in the text", async () => {
    setToken("secret-1");
    const none = { ...metricsResponse, time_window_hours: 1, metrics: [] };
    stubFetch(dashboardApi({ "/api/v1/monitoring/metrics": () => jsonResponse(none) }));
    renderApp("/monitoring?window=1");
    const empty = (await screen.findByText("No task executions in the last hour.")).parentElement!;
    expect(empty).toHaveTextContent("Queue demo tasks with ./dev demo 50");
    expect(empty).toHaveTextContent("a worker must be running");
    expect(screen.getByText(/Waiting for task events/)).toHaveTextContent("./dev demo 50");
    expect(document.body.textContent).not.toContain("`");
  });

  it("keeps a card for every known task name, and says when all of them are idle", async () => {
    setToken("secret-1");
    const idle = metricsResponse.metrics.map((m) => ({
      ...m,
      total_executions: 0,
      pending: 0,
      running: 0,
      success: 0,
      failed: 0,
      cancelled: 0,
      avg_duration_ms: null,
      p95_duration_ms: null,
      success_rate: null,
    }));
    stubFetch(
      dashboardApi({ "/api/v1/monitoring/metrics": () => jsonResponse({ ...metricsResponse, metrics: idle }) }),
    );
    renderApp("/monitoring");
    expect(await screen.findByText(/No task ran in the last 24 hours: every task name is idle/)).toBeInTheDocument();
    const cards = screen.getAllByRole("article");
    expect(cards).toHaveLength(2);
    for (const card of cards) expect(card).toHaveClass("metrics-card--idle");
  });

  it("says 1 run, not 1 runs", async () => {
    setToken("secret-1");
    const one = { ...metricsResponse.metrics[1], total_executions: 1, pending: 1 };
    stubFetch(
      dashboardApi({ "/api/v1/monitoring/metrics": () => jsonResponse({ ...metricsResponse, metrics: [one] }) }),
    );
    renderApp("/monitoring");
    const card = await screen.findByRole("article", { name: "emails.send" });
    expect(within(card).getByText("1 run")).toBeInTheDocument();
  });
});
