import { act, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { getToken, setToken } from "@/lib/token-store";
import { FakeWebSocket } from "@/testing/fake-websocket";
import { jsonResponse, renderApp, stubFetch, taskEvent } from "@/testing/utils";
import { subjectError } from "../validation";

const me = (role: string) => jsonResponse({ name: "carol", role });
/** GET of the report itself (its refresh history is another address, answered 404 unless stubbed). */
const isReport = (url: URL) =>
  url.pathname.startsWith("/api/v1/analyses/repository/") && !url.pathname.endsWith("/refreshes");
const report = {
  kind: "repository",
  subject: "/srv/repos/app",
  period: "1_year",
  created_at: "2026-11-23T08:00:00Z",
  cache_age_seconds: 7300,
  is_stale: true,
  is_regenerating: false,
  task_id: "t-1",
  result: {
    commit_count: 12,
    top_contributors: [{ author: "Ada", commits: 9 }],
    commits_per_week: [{ week: "2026-W40", commits: 12 }],
    languages: { Python: 900, TypeScript: 300 },
    technologies: ["FastAPI", "React"],
    plan_progress: {
      total: 4,
      done: 2,
      percentage: 50,
      files: [{ path: "PLAN.md", total: 4, done: 2, percentage: 50 }],
      files_read: ["PLAN.md", "README.md"],
      files_read_count: 2,
    },
  },
};

describe("subject validation mirrors the server", () => {
  it.each([
    ["repository", "", "Enter a git URL"],
    ["repository", "relative/path", "must be absolute"],
    ["repository", "file:///etc", "file:// transport is refused"],
    ["repository", "https://user:pw@github.com/a/b", "Credentials in the URL"],
    ["repository", "--upload-pack=x", "Not a git URL"],
    ["github_user", "-bad-", "GitHub username"],
  ] as const)("%s %j is refused: %s", (kind, subject, says) => {
    expect(subjectError(kind, subject)).toContain(says);
  });

  it.each([
    ["repository", "https://github.com/octo/app"],
    ["repository", "git@github.com:octo/app.git"],
    ["repository", "/srv/repos/app"],
    ["github_user", "octo-cat"],
  ] as const)("%s %j is accepted", (kind, subject) => {
    expect(subjectError(kind, subject)).toBeNull();
  });
});

describe("analyses pages", () => {
  it("the form refuses a bad subject without calling the server, then submits and opens the analysis", async () => {
    setToken("t");
    const posted: unknown[] = [];
    stubFetch((url, request) => {
      if (url.pathname === "/api/v1/me") return me("operator");
      if (url.pathname === "/api/v1/analyses" && request.method === "GET") return jsonResponse({ items: [] });
      if (url.pathname === "/api/v1/analyses" && request.method === "POST") {
        posted.push(request);
        return jsonResponse({ task_id: "new-1", status: "pending", deduplicated: false, cached: false }, 202);
      }
      if (isReport(url)) return jsonResponse({ ...report, result: null, is_regenerating: true, task_id: "new-1" }, 202);
      if (url.pathname === "/api/v1/tasks/new-1") {
        return jsonResponse({
          task_id: "new-1",
          task_name: "analyses.repository",
          status: "running",
          progress: 0.4,
          progress_message: "reading history",
          attempts: [],
          queue: null,
          params: null,
          result: null,
          created_at: "x",
          started_at: null,
          completed_at: null,
          duration_ms: null,
        });
      }
    });
    renderApp("/analyses");
    const user = userEvent.setup();

    await user.type(await screen.findByLabelText("Repository"), "relative/path");
    await user.click(screen.getByRole("button", { name: "Analyse" }));
    expect(screen.getByRole("alert")).toHaveTextContent("A local path must be absolute.");
    expect(posted).toHaveLength(0);

    await user.clear(screen.getByLabelText("Repository"));
    await user.type(screen.getByLabelText("Repository"), "/srv/repos/app");
    await user.click(screen.getByRole("button", { name: "Analyse" }));
    expect(await screen.findByText(/reading history/)).toBeInTheDocument();
    expect(window.location.pathname).toBe("/analyses/repository/%2Fsrv%2Frepos%2Fapp");
    expect(screen.getByRole("progressbar", { name: "Analysis progress" })).toHaveAttribute("value", "40");
  });

  it("renders a stale report; a refresh past the limit shows when it can run again", async () => {
    setToken("t");
    stubFetch((url, request) => {
      if (url.pathname === "/api/v1/me") return me("operator");
      if (url.pathname === "/api/v1/analyses" && request.method === "POST") {
        return new Response(JSON.stringify({ error: "refresh limit reached (5/300)" }), {
          status: 429,
          headers: { "Content-Type": "application/json", "Retry-After": "125" },
        });
      }
      if (isReport(url)) return jsonResponse(report);
    });
    renderApp("/analyses/repository/%2Fsrv%2Frepos%2Fapp?period=1_year");
    const user = userEvent.setup();

    expect(await screen.findByTestId("repository-report")).toHaveTextContent("Ada");
    expect(screen.getByText("This report is out of date.")).toBeInTheDocument();
    expect(screen.getByTestId("cache-age")).toHaveTextContent("Generated 2 hours ago");
    expect(await screen.findByText("bar chart: lines (2 points)")).toBeInTheDocument();
    expect(screen.getByRole("progressbar", { name: "PLAN.md plan progress" })).toHaveAttribute("value", "50");
    const read = screen.getByTestId("plan-files-read");
    expect(read).toHaveTextContent("Checkboxes read from 2 markdown files");
    expect([...read.querySelectorAll("li")].map((li) => li.textContent)).toEqual(["PLAN.md", "README.md"]);

    await user.click(screen.getByRole("button", { name: "Refresh now" }));
    expect(await screen.findByTestId("refresh-countdown")).toHaveTextContent("you can refresh again in 2:05");
    expect(screen.getByRole("button", { name: "Refresh now" })).toBeDisabled();
  });

  it("a viewer gets a sign-in-as-operator link where Refresh would be, and comes back able to refresh", async () => {
    setToken("viewer-token");
    stubFetch((url, request) => {
      const operator = request.headers.get("Authorization") === "Bearer operator-token";
      if (url.pathname === "/api/v1/me") return me(operator ? "operator" : "viewer");
      if (isReport(url)) return jsonResponse(report);
    });
    renderApp("/analyses/repository/%2Fsrv%2Frepos%2Fapp?period=90d");
    const user = userEvent.setup();
    const link = await screen.findByRole("link", { name: "Sign in as operator to refresh" });
    expect(screen.queryByRole("button", { name: "Refresh now" })).toBeNull();

    await user.click(link);
    expect(await screen.findByRole("heading", { name: "Sign in as operator" })).toBeInTheDocument();
    expect(getToken()).toBe("viewer-token"); // kept until the new one is accepted
    await user.type(screen.getByLabelText("API token"), "operator-token");
    await user.click(screen.getByRole("button", { name: "Sign in" }));

    expect(await screen.findByRole("button", { name: "Refresh now" })).toBeInTheDocument();
    expect(getToken()).toBe("operator-token");
    expect(window.location.pathname + window.location.search).toBe(
      "/analyses/repository/%2Fsrv%2Frepos%2Fapp?period=90d",
    );
  });

  it("a late pending event never moves a running or finished analysis back", async () => {
    setToken("t");
    stubFetch((url) => {
      if (url.pathname === "/api/v1/me") return me("operator");
      if (url.pathname.startsWith("/api/v1/analyses/repository/"))
        return jsonResponse({ ...report, result: null, is_regenerating: true, task_id: "t-9" }, 202);
      if (url.pathname === "/api/v1/tasks/t-9") {
        // The poll lags behind the live events: it still says pending.
        return jsonResponse({
          task_id: "t-9",
          task_name: "analyses.repository",
          status: "pending",
          progress: null,
          progress_message: null,
          attempts: [],
          queue: null,
          params: null,
          result: null,
          created_at: "2026-11-23T10:00:00Z",
          started_at: null,
          completed_at: null,
          duration_ms: null,
        });
      }
    });
    renderApp("/analyses/repository/%2Fsrv%2Frepos%2Fapp");
    expect(await screen.findByText("Waiting for a worker…")).toBeInTheDocument();
    const socket = FakeWebSocket.latest();
    const analysis = "analyses.repository";

    act(() => {
      socket.open();
      socket.serverSend(taskEvent(analysis, "running", { task_id: "t-9", progress: 0.3, progress_message: "cloning" }));
    });
    expect(await screen.findByText("cloning")).toBeInTheDocument();

    // The sender's `pending`, published by another process, arrives after the worker's `running`.
    act(() => socket.serverSend(taskEvent(analysis, "pending", { task_id: "t-9" })));
    await act(async () => {
      await new Promise((resolve) => setTimeout(resolve, 150));
    });
    expect(screen.getByText("cloning")).toBeInTheDocument();
    expect(screen.queryByText("Waiting for a worker…")).toBeNull();
    expect(screen.getByRole("progressbar", { name: "Analysis progress" })).toHaveAttribute("value", "30");

    // Finished, then a late `pending` in the same batch: the analysis stays finished.
    act(() => {
      socket.serverSend(taskEvent(analysis, "success", { task_id: "t-9", progress: 1 }));
      socket.serverSend(taskEvent(analysis, "pending", { task_id: "t-9" }));
    });
    await waitFor(() => expect(screen.queryByTestId("task-progress")).toBeNull());
    await act(async () => {
      await new Promise((resolve) => setTimeout(resolve, 150));
    });
    expect(screen.queryByTestId("task-progress")).toBeNull();
    expect(screen.queryByText("Waiting for a worker…")).toBeNull();
  });
});
