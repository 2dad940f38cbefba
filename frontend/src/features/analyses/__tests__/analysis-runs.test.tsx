import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { setToken } from "@/lib/token-store";
import { jsonResponse, renderApp, stubFetch } from "@/testing/utils";

const me = (role: string) => jsonResponse({ name: "carol", role });
/** GET of the report itself (its refresh history is another address, answered 404 unless stubbed). */
const isReport = (url: URL) =>
  url.pathname.startsWith("/api/v1/analyses/repository/") && !url.pathname.endsWith("/refreshes");
const PAGE = "/analyses/repository/%2Fsrv%2Frepos%2Fapp";
const view = {
  kind: "repository",
  subject: "/srv/repos/app",
  period: "all",
  created_at: null,
  cache_age_seconds: null,
  is_stale: false,
  is_regenerating: false,
  task_id: null,
  result: null,
  live_unavailable: false,
  failed_task_id: null,
  attempts_allowed: 4,
};

function attempt(n: number, status: string, error: string | null = null) {
  return {
    attempt: n,
    status,
    worker: "w",
    started_at: null,
    completed_at: null,
    duration_ms: null,
    error_message: error,
    error_traceback: null,
  };
}

function task(taskId: string, attempts: ReturnType<typeof attempt>[]) {
  const last = attempts.at(-1)!;
  return {
    task_id: taskId,
    task_name: "analysis.repository",
    status: last.status,
    progress: null,
    progress_message: null,
    attempts,
    queue: null,
    params: null,
    result: null,
    created_at: "2026-11-23T08:00:00Z",
    started_at: null,
    completed_at: null,
    duration_ms: null,
    error_message: last.error_message,
  };
}

const isAnalysisGet = (r: Request) => r.method === "GET" && new URL(r.url).pathname.startsWith("/api/v1/analyses/");

describe("an analysis run on its page", () => {
  it("a failed run left open shows the failure, starts nothing, and Retry starts exactly one run", async () => {
    setToken("t");
    let failed = "t-1";
    const { requests } = stubFetch((url, request) => {
      if (url.pathname === "/api/v1/me") return me("operator");
      if (url.pathname === "/api/v1/tasks/t-1/retry" && request.method === "POST") {
        failed = "";
        return jsonResponse({ task_id: "t-2", retry_of: "t-1" }, 202);
      }
      if (isReport(url)) {
        return failed
          ? jsonResponse({ ...view, failed_task_id: failed })
          : jsonResponse({ ...view, is_regenerating: true, task_id: "t-2" }, 202);
      }
      if (url.pathname === "/api/v1/tasks/t-1")
        return jsonResponse(task("t-1", [attempt(1, "failed", "GitError: git clone failed")]));
      if (url.pathname === "/api/v1/tasks/t-2") return jsonResponse(task("t-2", [attempt(1, "running")]));
    });
    renderApp(PAGE);
    const user = userEvent.setup();

    expect(await screen.findByTestId("task-failed")).toHaveTextContent(
      "The analysis failed: GitError: git clone failed",
    );
    await new Promise((wait) => setTimeout(wait, 3_000)); // left open
    expect(requests.filter((r) => r.method === "POST")).toHaveLength(0);
    expect(requests.filter(isAnalysisGet).length).toBeLessThanOrEqual(2); // nothing runs: no polling
    expect(screen.queryByRole("button", { name: "Refresh now" })).toBeNull(); // Retry is the way

    await user.click(screen.getByRole("button", { name: "Retry" }));
    expect(await screen.findByTestId("task-progress")).toBeInTheDocument();
    expect(requests.filter((r) => r.method === "POST").map((r) => new URL(r.url).pathname)).toEqual([
      "/api/v1/tasks/t-1/retry",
    ]);
    expect(screen.getByRole("button", { name: "Cancel" })).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "Task details" })).toHaveAttribute("href", "/tasks/t-2");
  }, 10_000);

  it("a failed attempt with retries to come says so, not 'failed'", async () => {
    setToken("t");
    stubFetch((url) => {
      if (url.pathname === "/api/v1/me") return me("operator");
      if (isReport(url)) return jsonResponse({ ...view, is_regenerating: true, task_id: "t-1" }, 202);
      if (url.pathname === "/api/v1/tasks/t-1")
        return jsonResponse(task("t-1", [attempt(1, "failed", "TransientGitHubError: GitHub answered 502")]));
    });
    renderApp(PAGE);

    await waitFor(() =>
      expect(screen.getByTestId("task-progress")).toHaveTextContent(
        "Attempt 1 failed (TransientGitHubError: GitHub answered 502), retrying (2 of 4)…",
      ),
    );
    expect(screen.queryByTestId("task-failed")).toBeNull();
  });

  it("a failed attempt counts down to the next one, then says it is starting", async () => {
    setToken("t");
    const retryAt = new Date(Date.now() + 2_500).toISOString();
    const waiting = {
      ...task("t-1", [attempt(1, "failed", "TransientGitHubError: GitHub answered 502"), attempt(2, "pending")]),
      error_message: null,
      retry_at: retryAt,
    };
    stubFetch((url) => {
      if (url.pathname === "/api/v1/me") return me("operator");
      if (isReport(url)) return jsonResponse({ ...view, is_regenerating: true, task_id: "t-1" }, 202);
      if (url.pathname === "/api/v1/tasks/t-1")
        return jsonResponse(Date.now() < Date.parse(retryAt) ? waiting : { ...waiting, retry_at: null });
    });
    renderApp(PAGE);

    const progress = await screen.findByTestId("task-progress");
    await waitFor(() =>
      expect(progress).toHaveTextContent(
        "Attempt 1 failed (TransientGitHubError: GitHub answered 502), retrying in 3 s (2 of 4)",
      ),
    );
    await waitFor(() => expect(progress).toHaveTextContent("retrying in 2 s (2 of 4)"), { timeout: 2_000 });
    await waitFor(() => expect(progress).toHaveTextContent("retrying in 1 s (2 of 4)"), { timeout: 2_000 });
    await waitFor(() => expect(progress).toHaveTextContent("retrying now (2 of 4)…"), { timeout: 2_000 });
    expect(screen.queryByTestId("task-failed")).toBeNull();
  }, 10_000);

  it("the last attempt failing is final", async () => {
    setToken("t");
    stubFetch((url) => {
      if (url.pathname === "/api/v1/me") return me("viewer");
      if (isReport(url)) return jsonResponse({ ...view, failed_task_id: "t-1" });
      if (url.pathname === "/api/v1/tasks/t-1")
        return jsonResponse(
          task(
            "t-1",
            [1, 2, 3, 4].map((n) => attempt(n, "failed", "GitHub answered 502")),
          ),
        );
    });
    renderApp(PAGE);

    expect(await screen.findByTestId("task-failed")).toHaveTextContent(
      "The analysis failed after 4 attempts: GitHub answered 502",
    );
    expect(screen.queryByRole("button", { name: "Retry" })).toBeNull(); // a viewer cannot
  });

  it("says when a refresh joined a run already going", async () => {
    setToken("t");
    let running = false;
    stubFetch((url, request) => {
      if (url.pathname === "/api/v1/me") return me("operator");
      if (url.pathname === "/api/v1/analyses" && request.method === "POST") {
        running = true;
        return jsonResponse({ task_id: "t-9", status: "running", deduplicated: true, cached: false }, 202);
      }
      if (isReport(url))
        return jsonResponse({
          ...view,
          result: { commit_count: 1 },
          created_at: "2026-11-23T08:00:00Z",
          cache_age_seconds: 27,
          task_id: running ? "t-9" : "t-0",
          is_regenerating: running,
        });
      if (url.pathname === "/api/v1/tasks/t-9") return jsonResponse(task("t-9", [attempt(1, "running")]));
    });
    renderApp(PAGE);
    const user = userEvent.setup();

    await user.click(await screen.findByRole("button", { name: "Refresh now" }));
    expect(await screen.findByTestId("answered-from")).toHaveTextContent("Already running: following that run.");
    await waitFor(() => expect(screen.getByTestId("task-progress")).toBeInTheDocument());
  });

  it("shows who forced refreshes, how they went, and how many the operator has left", async () => {
    setToken("t");
    stubFetch((url) => {
      if (url.pathname === "/api/v1/me") return me("operator");
      if (url.pathname.endsWith("/refreshes"))
        return jsonResponse({
          kind: "repository",
          subject: "/srv/repos/app",
          period: "all",
          refreshes_left: 3,
          refresh_limit: 5,
          refresh_window_seconds: 300,
          refreshes: [
            {
              requested_by: "ops",
              requested_at: "2026-11-23T08:05:00Z",
              task_id: "t-3",
              deduplicated: true,
              outcome: "failed",
              duration_ms: 850,
            },
            {
              requested_by: "carol",
              requested_at: "2026-11-23T08:00:00Z",
              task_id: "t-2",
              deduplicated: false,
              outcome: "success",
              duration_ms: 1234,
            },
          ],
        });
      if (isReport(url))
        return jsonResponse({
          ...view,
          result: { commit_count: 1 },
          created_at: "2026-11-23T08:00:00Z",
          cache_age_seconds: 27,
          task_id: "t-2",
        });
    });
    renderApp(PAGE);

    const panel = await screen.findByTestId("refresh-history");
    expect(await screen.findByTestId("refreshes-left")).toHaveTextContent(
      "3 of 5 forced refreshes left in this window (5 minutes).",
    );
    const rows = [...panel.querySelectorAll("tbody tr")].map((r) =>
      [...r.querySelectorAll("td")].map((c) => c.textContent),
    );
    expect(rows.map((r) => [r[0], r[2], r[3]])).toEqual([
      ["ops", "failed (joined a running one)", "850 ms"],
      ["carol", "success", "1.23 s"],
    ]);
  });
});
