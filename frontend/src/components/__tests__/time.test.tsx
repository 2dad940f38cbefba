import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { setToken } from "@/lib/token-store";
import { dashboardApi } from "@/testing/fixtures";
import { formatDateTime, formatRelative } from "@/lib/format";
import { jsonResponse, renderApp, stubFetch } from "@/testing/utils";

describe("times", () => {
  it("one format: date and 24-hour time, with UTC said when it is UTC", () => {
    expect(formatDateTime("2026-11-23T09:05:07Z", "utc")).toBe("2026-11-23 09:05:07 UTC");
    expect(formatDateTime("2026-11-23T09:05:07Z", "local")).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:07$/);
    expect(formatDateTime(null)).toBe("—");
  });

  it("relative times in words, either side of now", () => {
    const now = Date.parse("2026-11-23T12:00:00Z");
    expect(formatRelative("2026-11-23T11:59:55Z", now)).toBe("just now");
    expect(formatRelative("2026-11-23T11:59:30Z", now)).toBe("30 s ago");
    expect(formatRelative("2026-11-23T11:55:00Z", now)).toBe("5 min ago");
    expect(formatRelative("2026-11-23T09:00:00Z", now)).toBe("3 h ago");
    expect(formatRelative("2026-11-22T12:00:00Z", now)).toBe("1 day ago");
    expect(formatRelative("2026-11-23T12:10:00Z", now)).toBe("in 10 min");
  });

  it("history shows how long ago, the exact time on hover, and the zone switch changes it", async () => {
    setToken("t");
    const started = new Date(Date.now() - 5 * 60_000 - 5_000).toISOString();
    const row = {
      id: 1,
      task_id: "t-1",
      task_name: "reports.build",
      status: "success",
      params: {},
      queue: "tasklens",
      attempt: 1,
      worker: "host:1",
      progress: 1,
      progress_message: null,
      result: null,
      started_at: started,
      completed_at: started,
      duration_ms: 10,
      error_message: null,
      error_traceback: null,
      created_at: started,
      updated_at: started,
    };
    const page = { total_count: 1, page: 1, page_size: 25, total_pages: 1, items: [row] };
    stubFetch(dashboardApi({ "/api/v1/monitoring/history": () => jsonResponse(page) }));
    renderApp("/monitoring");
    const user = userEvent.setup();

    const cell = within(await screen.findByTestId("history-row", undefined, { timeout: 5_000 })).getByText("5 min ago");
    expect(cell).toHaveAttribute("title", formatDateTime(started, "local"));
    expect(cell).toHaveAttribute("datetime", started);

    await user.click(screen.getByRole("button", { name: /^Times in local time/ }));
    const again = within(screen.getByTestId("history-row")).getByText("5 min ago");
    expect(again).toHaveAttribute("title", formatDateTime(started, "utc"));
    expect(again.getAttribute("title")).toMatch(/ UTC$/);
    expect(screen.getByRole("button", { name: /^Times in UTC/ })).toHaveTextContent("UTC");
    expect(window.localStorage.getItem("tasklens.timeZone")).toBe("utc");
  });
});
