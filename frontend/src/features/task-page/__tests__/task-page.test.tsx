import { act, cleanup, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it } from "vitest";
import { setToken } from "@/lib/token-store";
import { dashboardApi } from "@/testing/fixtures";
import { FakeWebSocket } from "@/testing/fake-websocket";
import { jsonResponse, renderApp, stubFetch, taskEvent } from "@/testing/utils";
import { buildTimeline, type Attempt } from "../timeline";

function attempt(n: number, overrides: Partial<Attempt> = {}): Attempt {
  return {
    attempt: n,
    status: "success",
    queue: "tasklens:high",
    worker: "host-a:41",
    created_at: "2026-11-23T10:00:00Z",
    started_at: "2026-11-23T10:00:02Z",
    completed_at: "2026-11-23T10:00:05Z",
    duration_ms: 3000,
    error_message: null,
    error_traceback: null,
    ...overrides,
  };
}

const TRACEBACK = 'Traceback (most recent call last):\n  File "demo.py", line 35\nValueError: boom';

/** A task that failed once, was redelivered 30 s later and failed again. */
function failedTwice() {
  const first = attempt(1, { status: "failed", error_message: "ValueError: boom", error_traceback: TRACEBACK });
  const second = attempt(2, {
    status: "failed",
    worker: "host-b:7",
    created_at: "2026-11-23T10:00:35Z",
    started_at: "2026-11-23T10:00:36Z",
    completed_at: "2026-11-23T10:00:36.250Z",
    duration_ms: 250,
    error_message: "ValueError: boom again",
    error_traceback: `${TRACEBACK} again`,
  });
  return {
    task_id: "0f3c9a1e2b",
    task_name: "demo.flaky",
    status: "failed",
    queue: "tasklens:high",
    worker: "host-b:7",
    progress: null,
    progress_message: null,
    params: { record_id: 7, failure_rate: 1 },
    result: null,
    created_at: first.created_at,
    started_at: first.started_at,
    completed_at: second.completed_at,
    duration_ms: 250,
    error_message: "ValueError: boom again",
    attempts: [first, second],
  };
}

afterEach(cleanup);

describe("task timeline", () => {
  it("shows the queue wait, the run and the retry delay of every attempt", () => {
    const task = failedTwice();
    const steps = buildTimeline(task.attempts, Date.parse("2026-11-23T11:00:00Z"));
    expect(steps.map((s) => [s.kind, s.durationMs])).toEqual([
      ["enqueued", null],
      ["waited", 2000],
      ["started", null],
      ["ran", 3000],
      ["finished", null],
      ["retry-delay", 30_000],
      ["enqueued", null],
      ["waited", 1000],
      ["started", null],
      ["ran", 250],
      ["finished", null],
    ]);
    expect(steps.at(-1)!.label).toBe("Failed: ValueError: boom again");
    expect(steps[2].label).toBe("Started on host-a:41");
  });

  it("a task still in the queue has waited until now", () => {
    const pending = attempt(1, { status: "pending", started_at: null, completed_at: null, duration_ms: null });
    const steps = buildTimeline([pending], Date.parse("2026-11-23T10:01:00Z"));
    expect(steps.map((s) => [s.kind, s.durationMs])).toEqual([
      ["enqueued", null],
      ["waiting", 60_000],
    ]);
  });
});

describe("task page", () => {
  it("opened by its address: timeline, params, both tracebacks with copy buttons, and Retry", async () => {
    setToken("t");
    const task = failedTwice();
    const { requests } = stubFetch((url, request) => {
      if (url.pathname === "/api/v1/tasks/0f3c9a1e2b/retry" && request.method === "POST") {
        return jsonResponse({ task_id: "new-task-1", retry_of: task.task_id }, 202);
      }
      if (url.pathname === "/api/v1/tasks/0f3c9a1e2b") return jsonResponse(task);
      return dashboardApi()(url);
    });
    renderApp("/tasks/0f3c9a1e2b");
    const user = userEvent.setup();

    // The first render of the whole app in this file loads its modules: allow for it.
    await screen.findByRole("heading", { level: 1, name: "demo.flaky" }, { timeout: 5_000 });
    expect(document.title).toBe("demo.flaky failed · TaskLens");
    expect(screen.getByTestId("task-status")).toHaveTextContent("failed");
    expect(screen.getByTestId("task-error")).toHaveTextContent("ValueError: boom again");
    expect(screen.getByText("host-b:7")).toBeInTheDocument();

    const timeline = within(screen.getByRole("list", { name: "Timeline" }));
    const steps = timeline.getAllByTestId("timeline-step").map((li) => li.textContent);
    expect(steps[1]).toMatch(/^Waited in the queue 2\.00 s/);
    expect(steps[5]).toMatch(/^Retry delay before attempt 2 30\.00 s/);
    expect(steps[9]).toMatch(/^Ran 250 ms/);

    expect(JSON.parse(screen.getByTestId("task-params").textContent)).toEqual({ record_id: 7, failure_rate: 1 });
    const tracebacks = screen.getAllByTestId("traceback").map((t) => t.textContent);
    expect(tracebacks).toEqual([TRACEBACK, `${TRACEBACK} again`]);

    await user.click(screen.getByRole("button", { name: "Copy traceback of attempt 2" }));
    expect(await navigator.clipboard.readText()).toBe(`${TRACEBACK} again`);
    await user.click(screen.getByRole("button", { name: "Copy id" }));
    expect(await navigator.clipboard.readText()).toBe("0f3c9a1e2b");

    expect(screen.queryByRole("button", { name: "Cancel" })).not.toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Retry" }));
    await user.click(screen.getByRole("button", { name: "Confirm retry" }));
    await screen.findByText("Retried as new-task-1");
    expect(requests.some((r) => r.method === "POST" && r.url.endsWith("/api/v1/tasks/0f3c9a1e2b/retry"))).toBe(true);
  });

  it("a running task offers Cancel, and a viewer gets no actions", async () => {
    setToken("t");
    const running = {
      ...failedTwice(),
      status: "running",
      error_message: null,
      completed_at: null,
      attempts: [attempt(1, { status: "running", completed_at: null, duration_ms: null })],
    };
    stubFetch((url) => (url.pathname === "/api/v1/tasks/r-1" ? jsonResponse(running) : dashboardApi()(url)));
    renderApp("/tasks/r-1");
    await screen.findByRole("button", { name: "Cancel" });
    expect(screen.queryByRole("button", { name: "Retry" })).not.toBeInTheDocument();
    const steps = screen.getAllByTestId("timeline-step").map((li) => li.textContent);
    expect(steps.at(-1)).toMatch(/^Running /);
    cleanup();

    stubFetch((url) =>
      url.pathname === "/api/v1/tasks/r-1"
        ? jsonResponse(running)
        : url.pathname === "/api/v1/me"
          ? jsonResponse({ name: "val", role: "viewer" })
          : dashboardApi()(url),
    );
    renderApp("/tasks/r-1");
    await screen.findByRole("heading", { level: 1, name: "demo.flaky" });
    expect(screen.queryByRole("button", { name: "Cancel" })).not.toBeInTheDocument();
    expect(await screen.findByRole("link", { name: "Sign in as operator to cancel" })).toBeInTheDocument();
  });

  it("a task whose row is not written yet is watched for, not an error, and shows once it lands", async () => {
    setToken("t");
    let logged = false;
    const { requests } = stubFetch((url) =>
      url.pathname === "/api/v1/tasks/r-1"
        ? logged
          ? jsonResponse(failedTwice())
          : new Response(null, { status: 204 })
        : dashboardApi()(url),
    );
    renderApp("/tasks/r-1");
    expect(await screen.findByTestId("task-not-logged")).toHaveTextContent("No log row for this task yet");
    expect(screen.queryByRole("alert")).not.toBeInTheDocument();
    const polls = requests.filter((r) => new URL(r.url).pathname === "/api/v1/tasks/r-1");
    expect(new URL(polls[0].url).searchParams.get("missing_ok")).toBe("true");

    logged = true;
    expect(
      await screen.findByRole("heading", { level: 1, name: "demo.flaky" }, { timeout: 4_000 }),
    ).toBeInTheDocument();
  });
});

describe("links to the task page", () => {
  it("a live feed entry opens its task's page", async () => {
    setToken("t");
    const task = failedTwice();
    stubFetch((url) => (url.pathname === "/api/v1/tasks/0f3c9a1e2b" ? jsonResponse(task) : dashboardApi()(url)));
    renderApp("/monitoring");
    const socket = FakeWebSocket.latest();
    act(() => {
      socket.open();
      socket.serverSend(taskEvent("demo.flaky", "failed", { task_id: "0f3c9a1e2b", attempt: 2 }, "1"));
    });
    const feed = await screen.findByRole("list", { name: "Recent task events" });
    await userEvent.setup().click(within(feed).getByRole("link", { name: "demo.flaky" }));
    await screen.findByRole("heading", { level: 1, name: "demo.flaky" });
    expect(window.location.pathname).toBe("/tasks/0f3c9a1e2b");
  });

  it("a history row links to its task's page", async () => {
    setToken("t");
    const [first] = failedTwice().attempts;
    const row = { ...first, id: 5, task_id: "id/with?odd#chars", task_name: "demo.flaky", params: {}, progress: null };
    const page = { total_count: 1, page: 1, page_size: 25, total_pages: 1, items: [row] };
    stubFetch(dashboardApi({ "/api/v1/monitoring/history": () => jsonResponse(page) }));
    renderApp("/monitoring");
    const link = await screen.findByRole("link", { name: "Task page of demo.flaky id/with?odd#chars" });
    expect(link).toHaveAttribute("href", "/tasks/id%2Fwith%3Fodd%23chars");
  });

  it("an analysis report links to the task that made it", async () => {
    setToken("t");
    const view = {
      kind: "github_user",
      subject: "octo",
      period: "1_year",
      created_at: "2026-11-23T08:00:00Z",
      cache_age_seconds: 60,
      is_stale: false,
      is_regenerating: false,
      live_unavailable: false,
      task_id: "made-it-1",
      result: null,
    };
    stubFetch((url) =>
      url.pathname.startsWith("/api/v1/analyses/github_user/") ? jsonResponse(view) : dashboardApi()(url),
    );
    renderApp("/analyses/github_user/octo");
    expect(await screen.findByRole("link", { name: "Its task" })).toHaveAttribute("href", "/tasks/made-it-1");
  });
});
