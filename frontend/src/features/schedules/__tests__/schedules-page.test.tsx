import { render, screen, within } from "@testing-library/react";
import { MemoryRouter } from "react-router";
import { describe, expect, it } from "vitest";
import { SchedulesTable } from "../components/schedules-page";
import type { ScheduleItem } from "../api/schedules";
import { setToken } from "@/lib/token-store";
import { setTimeZone } from "@/lib/time-zone";
import { jsonResponse, renderApp, stubFetch } from "@/testing/utils";

const daily: ScheduleItem = {
  schedule_id: "a1",
  kind: "github_user",
  subject: "octocat",
  period: null,
  cron: "30 2 * * *",
  interval_seconds: null,
  next_run_at: "2026-12-01T02:30:00Z",
  last_run: {
    task_id: "0123456789abcdef",
    task_name: "analysis.github_user",
    status: "failed",
    at: "2026-11-30T02:30:05Z",
  },
};
const hourly: ScheduleItem = {
  schedule_id: "b2",
  kind: "repository",
  subject: "https://example.com/r.git",
  period: "1_month",
  cron: null,
  interval_seconds: 3600,
  next_run_at: "2026-11-30T04:00:00Z",
  last_run: null,
};

function api(body: unknown) {
  return (url: URL) => {
    if (url.pathname === "/api/v1/me") return jsonResponse({ name: "viewer", role: "viewer" });
    if (url.pathname === "/api/v1/schedules") return jsonResponse(body);
    if (url.pathname === "/api/v1/monitoring/task-names") return jsonResponse([]);
  };
}

describe("SchedulesTable", () => {
  it("shows each entry's timing, next run and last outcome linking to its task", () => {
    setTimeZone("utc");
    render(
      <MemoryRouter>
        <SchedulesTable schedules={[daily, hourly]} />
      </MemoryRouter>,
    );
    const [first, second] = screen.getAllByTestId("schedule-row");
    const cells = within(first).getAllByRole("cell");
    expect(cells[0]).toHaveTextContent("github_user octocat");
    expect(cells[1]).toHaveTextContent("cron 30 2 * * * (UTC)");
    expect(cells[2]).toHaveTextContent("2026-12-01 02:30:00 UTC");
    expect(within(cells[3]).getByRole("link")).toHaveAttribute("href", "/tasks/0123456789abcdef");
    expect(within(cells[3]).getByTestId("last-status")).toHaveTextContent("failed");
    expect(within(cells[3]).getByTestId("last-status")).toHaveClass("status--failed");

    const other = within(second).getAllByRole("cell");
    expect(other[0]).toHaveTextContent("repository https://example.com/r.git · 1_month");
    expect(other[1]).toHaveTextContent("every 1 hour");
    expect(other[3]).toHaveTextContent("not run yet");
  });

  it("says 'never' for a cron that never matches", () => {
    render(
      <MemoryRouter>
        <SchedulesTable schedules={[{ ...daily, cron: "0 0 31 2 *", next_run_at: null }]} />
      </MemoryRouter>,
    );
    expect(within(screen.getByTestId("schedule-row")).getAllByRole("cell")[2]).toHaveTextContent("never");
  });
});

describe("schedules page", () => {
  it("without a schedules file, says how to add one", async () => {
    setToken("t");
    stubFetch(api({ configured: false, error: null, schedules: [] }));
    renderApp("/schedules");
    const empty = await screen.findByTestId("schedules-empty");
    expect(empty).toHaveTextContent("No schedules file is configured.");
    expect(empty).toHaveTextContent("TASKLENS_SCHEDULES_FILE");
    expect(empty).toHaveTextContent("Scheduled refreshes");
  });

  it("lists the entries, and says when the file cannot be read now", async () => {
    setToken("t");
    stubFetch(api({ configured: true, error: "schedules.json: schedules[1]: bad", schedules: [daily] }));
    renderApp("/schedules");
    expect(await screen.findAllByTestId("schedule-row")).toHaveLength(1);
    expect(screen.getByRole("alert")).toHaveTextContent("schedules[1]: bad");
    expect(screen.getByRole("link", { name: "Schedules" })).toHaveAttribute("aria-current", "page");
  });
});
