import { act, cleanup, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { setToken } from "@/lib/token-store";
import { dashboardApi } from "@/testing/fixtures";
import { FakeWebSocket } from "@/testing/fake-websocket";
import { jsonResponse, renderApp, stubFetch, taskEvent } from "@/testing/utils";

function row(id: number, overrides: Record<string, unknown> = {}) {
  return {
    id,
    task_id: `task-${id}`,
    task_name: "reports.build",
    status: "success",
    params: { user: "octo" },
    queue: "tasklens",
    attempt: 1,
    worker: "host:1",
    progress: 1,
    progress_message: null,
    result: { rows: 3 },
    started_at: "2026-11-23T10:00:00Z",
    completed_at: "2026-11-23T10:00:01Z",
    duration_ms: 1000,
    error_message: null,
    error_traceback: null,
    created_at: "2026-11-23T10:00:00Z",
    updated_at: "2026-11-23T10:00:01Z",
    ...overrides,
  };
}

const failed = row(2, {
  status: "failed",
  error_message: "ValueError: boom",
  error_traceback: 'Traceback (most recent call last):\n  File "tasks.py", line 3\nValueError: boom',
});

function historyApi(total = 120) {
  const seen: URLSearchParams[] = [];
  const route = dashboardApi({
    "/api/v1/monitoring/history": () => undefined,
  });
  return {
    seen,
    route: (url: URL) => {
      if (url.pathname === "/api/v1/monitoring/history") {
        seen.push(url.searchParams);
        const page = Number(url.searchParams.get("page"));
        return jsonResponse({
          total_count: total,
          page,
          page_size: 25,
          total_pages: Math.ceil(total / 25),
          items: [row(page * 100), failed],
        });
      }
      return route(url);
    },
  };
}

describe("history table", () => {
  it("filters go to the server and into the URL, back to page 1", async () => {
    setToken("t");
    const api = historyApi();
    stubFetch(api.route);
    renderApp("/monitoring?page=3");
    const user = userEvent.setup();

    await screen.findByText("Page 3 of 5");
    expect(api.seen.at(-1)!.get("page")).toBe("3");

    await user.selectOptions(screen.getByLabelText("Status"), "failed");
    await screen.findByText("Page 1 of 5");
    const query = api.seen.at(-1)!;
    expect([query.get("status"), query.get("page"), query.get("page_size")]).toEqual(["failed", "1", "25"]);
    expect(new URLSearchParams(window.location.search).get("status")).toBe("failed");

    await user.selectOptions(await screen.findByLabelText("Task name"), "emails.send");
    expect(api.seen.at(-1)!.get("task_name")).toBe("emails.send");
    expect(window.location.search).toContain("task_name=emails.send");
  });

  it("counts in words that read right: one execution, and page 1 of 1 when there are none", async () => {
    setToken("t");
    let total = 1;
    stubFetch(
      dashboardApi({
        "/api/v1/monitoring/history": () =>
          jsonResponse({
            total_count: total,
            page: 1,
            page_size: 25,
            total_pages: total,
            items: total ? [failed] : [],
          }),
      }),
    );
    renderApp("/monitoring");
    expect(await screen.findByTestId("history-total")).toHaveTextContent(/^1 execution$/);
    expect(screen.getByText("Page 1 of 1")).toBeInTheDocument();
    cleanup();

    total = 0; // the API says total_pages 0 for no rows
    renderApp("/monitoring?status=cancelled");
    expect(await screen.findByTestId("history-total")).toHaveTextContent(/^0 executions$/);
    expect(screen.getByText("Page 1 of 1")).toBeInTheDocument();
    expect(screen.queryByText(/of 0/)).toBeNull();
  });

  it("pages forward and back through the URL", async () => {
    setToken("t");
    const api = historyApi();
    stubFetch(api.route);
    renderApp("/monitoring");
    const user = userEvent.setup();

    await screen.findByText("Page 1 of 5");
    expect(screen.getByRole("button", { name: "Previous" })).toBeDisabled();
    await user.click(screen.getByRole("button", { name: "Next" }));
    await screen.findByText("Page 2 of 5");
    expect(api.seen.at(-1)!.get("page")).toBe("2");
    expect(window.location.search).toBe("?page=2");
    await user.click(screen.getByRole("button", { name: "Previous" }));
    await screen.findByText("Page 1 of 5");
  });

  it("a row expands to params, result and the full traceback", async () => {
    setToken("t");
    stubFetch(historyApi().route);
    renderApp("/monitoring");
    const user = userEvent.setup();

    const toggles = await screen.findAllByRole("button", { name: /reports\.build/ });
    await user.click(toggles[1]);
    expect(toggles[1]).toHaveAttribute("aria-expanded", "true");
    expect(screen.getByTestId("traceback")).toHaveTextContent('File "tasks.py", line 3');
    expect(screen.getByRole("button", { name: "Copy traceback" })).toBeInTheDocument();
    expect(screen.getByText(/"user": "octo"/)).toBeInTheDocument();
  });

  it("a live event updates the matching row in place", async () => {
    setToken("t");
    stubFetch(historyApi().route);
    renderApp("/monitoring?page=2");
    const rows = await screen.findAllByTestId("history-row");
    expect(within(rows[0]).getByText("success")).toBeInTheDocument();

    const socket = FakeWebSocket.latest();
    act(() => {
      socket.open();
      socket.serverSend(taskEvent("reports.build", "failed", { task_id: "task-200", error_message: "lost" }));
    });
    expect(await within(rows[0]).findByText("failed")).toBeInTheDocument();
    expect(within(rows[0]).getByText("lost")).toBeInTheDocument();
  });

  it("a late pending event never turns a running or finished row back", async () => {
    setToken("t");
    stubFetch(historyApi().route);
    renderApp("/monitoring?page=2");
    const rows = await screen.findAllByTestId("history-row");
    expect(within(rows[0]).getByText("success")).toBeInTheDocument();

    const socket = FakeWebSocket.latest();
    act(() => {
      socket.open();
      // The sender's `pending` and the worker's `running`, arriving after the rows ended.
      socket.serverSend(taskEvent("reports.build", "running", { task_id: "task-200" }));
      socket.serverSend(taskEvent("reports.build", "pending", { task_id: "task-2" }));
      socket.serverSend(taskEvent("reports.build", "pending", { task_id: "task-200" }));
    });
    await act(async () => {
      await new Promise((resolve) => setTimeout(resolve, 50));
    });
    expect(within(rows[0]).getByText("success")).toBeInTheDocument();
    expect(within(rows[1]).getByText("failed")).toBeInTheDocument();
    expect(within(rows[0]).queryByText("pending")).not.toBeInTheDocument();
    expect(within(rows[1]).queryByText("pending")).not.toBeInTheDocument();
  });
});
