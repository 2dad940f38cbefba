import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { setToken } from "@/lib/token-store";
import { jsonResponse, renderApp, stubFetch } from "@/testing/utils";

const queues = {
  queues: [
    { name: "high", stream: "tasklens:high", depth: 2, in_flight: 1, paused: false },
    { name: "default", stream: "tasklens", depth: 40, in_flight: 3, paused: true },
  ],
  workers: [
    {
      id: "w1",
      hostname: "box",
      pid: 42,
      started_at: "2026-11-23T09:00:00Z",
      last_seen: "2026-11-23T10:00:00Z",
      online: true,
      running: 3,
    },
  ],
};

function failedTask(id: string) {
  return {
    id: 1,
    task_id: id,
    task_name: "reports.build",
    status: "failed",
    params: {},
    queue: "tasklens",
    attempt: 1,
    worker: null,
    progress: null,
    progress_message: null,
    result: null,
    started_at: null,
    completed_at: null,
    duration_ms: 10,
    error_message: "boom",
    error_traceback: "Traceback",
    created_at: "2026-11-23T10:00:00Z",
    updated_at: "2026-11-23T10:00:00Z",
  };
}

function api(role: "operator" | "viewer", posted: Request[] = [], served = queues) {
  return (url: URL, request: Request) => {
    if (url.pathname === "/api/v1/me") return jsonResponse({ name: "bob", role });
    if (url.pathname === "/api/v1/queues") return jsonResponse(served);
    if (url.pathname === "/api/v1/monitoring/history") {
      const failed = url.searchParams.get("status") === "failed";
      const items = failed ? [failedTask("f-1")] : [];
      return jsonResponse({ total_count: items.length, page: 1, page_size: 25, total_pages: 1, items });
    }
    const control = /^\/api\/v1\/queues\/(\w+)\/(pause|resume|purge)$/.exec(url.pathname);
    if (control && request.method === "POST") {
      posted.push(request);
      const [, queue, action] = control;
      if (action === "purge") return jsonResponse({ queue, purged: 40 });
      return jsonResponse({ queue, paused: action === "pause" });
    }
    if (url.pathname === "/api/v1/tasks/f-1/retry" && request.method === "POST") {
      posted.push(request);
      return jsonResponse({ task_id: "f-2", retry_of: "f-1" }, 202);
    }
  };
}

describe("queues page", () => {
  it("shows depths and workers; an operator retries a failed task after confirming", async () => {
    setToken("t");
    const posted: Request[] = [];
    stubFetch(api("operator", posted));
    renderApp("/queues");
    const user = userEvent.setup();

    const rows = await screen.findAllByTestId("queue-row");
    expect(rows.map((r) => r.textContent)).toEqual([
      "high tasklens:high21activePausePurge",
      "default tasklens403pausedResumePurge",
    ]);
    expect(screen.getByTestId("worker-row")).toHaveTextContent("box:42online3");

    const failed = await screen.findByTestId("failed-task");
    await user.click(within(failed).getByRole("button", { name: "Retry" }));
    expect(posted).toHaveLength(0);
    await user.click(within(failed).getByRole("button", { name: "Confirm retry" }));
    expect(await within(failed).findByText("Retried as f-2")).toBeInTheDocument();
    expect(posted).toHaveLength(1);
    expect(screen.getByRole("heading", { name: "Run demo tasks" })).toBeInTheDocument();
  });

  it("an operator pauses a queue at once and purges one after confirming the count", async () => {
    setToken("t");
    const posted: Request[] = [];
    stubFetch(api("operator", posted));
    renderApp("/queues");
    const user = userEvent.setup();
    const [high, normal] = await screen.findAllByTestId("queue-row");

    await user.click(within(high).getByRole("button", { name: "Pause high" }));
    expect(await within(high).findByText("Paused")).toBeInTheDocument();
    expect(posted.map((r) => new URL(r.url).pathname)).toEqual(["/api/v1/queues/high/pause"]);

    await user.click(within(normal).getByRole("button", { name: "Purge default" }));
    expect(within(normal).getByText("Purge 40 waiting tasks?")).toBeInTheDocument();
    expect(posted).toHaveLength(1); // nothing purged before the confirmation
    await user.click(within(normal).getByRole("button", { name: "Keep" }));
    expect(within(normal).queryByText(/Purge 40/)).toBeNull();
    await user.click(within(normal).getByRole("button", { name: "Purge default" }));
    await user.click(within(normal).getByRole("button", { name: "Confirm purge" }));
    expect(await within(normal).findByText("Purged 40 waiting tasks")).toBeInTheDocument();
    expect(posted.map((r) => new URL(r.url).pathname)).toEqual([
      "/api/v1/queues/high/pause",
      "/api/v1/queues/default/purge",
    ]);
  });

  it("an empty queue has nothing to purge", async () => {
    setToken("t");
    stubFetch(api("operator", [], { ...queues, queues: [{ ...queues.queues[0], depth: 0 }] }));
    renderApp("/queues");
    const [row] = await screen.findAllByTestId("queue-row");
    expect(within(row).getByRole("button", { name: "Purge high" })).toBeDisabled();
  });

  it("with no worker, says how to start one in plain text", async () => {
    setToken("t");
    stubFetch(api("viewer", [], { ...queues, workers: [] }));
    renderApp("/queues");
    const hint = await screen.findByText(/No worker has reported in/);
    expect(hint).toHaveTextContent("Start one with tasklens worker");
    expect(hint.textContent).not.toContain("`");
  });

  it("a viewer sees the same data without any operator action", async () => {
    setToken("t");
    stubFetch(api("viewer"));
    renderApp("/queues");
    const failed = await screen.findByTestId("failed-task");
    expect(failed).toHaveTextContent("boom");
    await screen.findByText("viewer");
    expect(within(failed).queryByRole("button")).toBeNull();
    const rows = screen.getAllByTestId("queue-row");
    expect(rows[1]).toHaveTextContent("paused");
    expect(within(rows[1]).queryByRole("button")).toBeNull();
    expect(screen.queryByRole("columnheader", { name: "Actions" })).toBeNull();
    expect(screen.queryByRole("heading", { name: "Run demo tasks" })).toBeNull();
    expect(
      screen.getByRole("link", { name: "Sign in as operator to pause queues, queue demo tasks, cancel or retry" }),
    ).toHaveAttribute("href", "/sign-in");
  });
});
